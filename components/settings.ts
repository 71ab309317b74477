import * as crypto from "node:crypto";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { CronExpressionParser } from "cron-parser";
import { cronProblem } from "./cron";
import { z } from "zod";

/** The stack config namespace: every key is `edms-backup:<key>`. */
export const namespace = "edms-backup";

const backupIdPattern = /^\d{8}_\d{6}$/;
export const dockerHostPattern = /^(unix|ssh|tcp|npipe):\/\/\S+$/;
const secretNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** How to set each key, for the error messages. */
const examples: Record<string, string> = {
  dockerHost: "pulumi config set edms-backup:dockerHost ssh://deploy@vm.example.org",
  network: "pulumi config set edms-backup:network edms_default",
  database: `pulumi config set --path 'edms-backup:database.host' db (and .port 5432, .name edms, .user edms)`,
  dbPassword: "pulumi config set --secret edms-backup:dbPassword <the database password>",
  storageVolumes: "pulumi config set --path 'edms-backup:storageVolumes[0]' edms_documents",
  configPaths: "pulumi config set --path 'edms-backup:configPaths[0]' /srv/edms/.env",
  schedule: "pulumi config set edms-backup:schedule '0 2 * * *'",
  timezone: "pulumi config set edms-backup:timezone Europe/Berlin",
  retentionDays: "pulumi config set edms-backup:retentionDays 7",
  keepLast: "pulumi config set edms-backup:keepLast 3",
  pinned: "pulumi config set --path 'edms-backup:pinned[0]' 20260104_020000",
  retention: "pulumi config set --path 'edms-backup:retention.keepDaily' 7 (and .keepWeekly 4, .keepMonthly 12)",
  drill: "pulumi config set --path 'edms-backup:drill.schedule' '0 5 * * 6'",
  image: "pulumi config set edms-backup:image postgres:16-bookworm",
  runtimeImage: "pulumi config set edms-backup:runtimeImage registry.example.org/edms-backup-runtime:16",
  dockerSocket: "pulumi config set edms-backup:dockerSocket /run/user/1000/docker.sock",
  appContainers: "pulumi config set --path 'edms-backup:appContainers[0]' edms_backend",
  restore: "pulumi config set --path 'edms-backup:restore.backupId' 20260104_020000 && pulumi config set --path 'edms-backup:restore.confirm' true",
  role: "pulumi config set edms-backup:role vault (a vault stack; see Pulumi.vault.yaml)",
  appSecrets: "pulumi config set --secret --path 'edms-backup:appSecrets.SECRET_KEY' <value>",
  appEnvFile: "pulumi config set edms-backup:appEnvFile /srv/edms/.env",
  backupVolume: "pulumi config set edms-backup:backupVolume edms-backups",
  protectBackups: "pulumi config set edms-backup:protectBackups true",
  demo: "pulumi config set edms-backup:demo false",
  offsite: "pulumi config set --path 'edms-backup:offsite.repository' s3:https://s3.example.org/bucket/edms-prod",
  offsitePassword: "pulumi config set --secret edms-backup:offsitePassword <the restic repository's password>",
  offsiteEnv: "pulumi config set --secret --path 'edms-backup:offsiteEnv.AWS_ACCESS_KEY_ID' <key id>",
  offsiteSshKey: "pulumi config set --secret edms-backup:offsiteSshKey < ~/.ssh/edms_backup_ed25519",
  notifications: "pulumi config set --secret --path 'edms-backup:notifications.pingUrl' https://hc-ping.com/<uuid>",
  pitr: "pulumi config set --path 'edms-backup:pitr.enabled' true && pulumi config set --path 'edms-backup:pitr.replicationUser' edms_replication && pulumi config set --secret --path 'edms-backup:pitr.replicationPassword' <its password>",
};

/**
 * A boolean as Pulumi delivers it: top-level config values are strings ("false"), values
 * set with --path inside an object are JSON (false). z.coerce.boolean would read "false"
 * as true.
 */
export const booleanSetting = z.union([z.boolean(), z.enum(["true", "false"]).transform((v) => v === "true")], { error: "must be true or false" });

const absolutePath = z.string().refine((p) => path.posix.isAbsolute(p) && p !== "/", {
  error: "must be an absolute host path other than /",
});
// Its folder is bind-mounted (a mount of the file itself would pin its inode): not /.
const configPath = absolutePath.refine((p) => path.posix.dirname(path.posix.normalize(p)) !== "/", {
  error: "is directly under /: the scheduler mounts each config path's folder, and / is not mounted; name a path inside a folder (/srv/edms/.env)",
});

const restoreSchema = z.strictObject({
  backupId: z.string().regex(backupIdPattern, { error: "must be a backup id, YYYYMMDD_HHMMSS (UTC), as `edms-backup list` prints it" }),
  // Required (loadSettings), except for files without overwrite: those put back only what is
  // missing or older on the volume.
  confirm: z
    .union([z.literal(true), z.literal("true").transform(() => true as const)], {
      error: "must be true: a restore replaces the database and the storage, so it is only declared when confirmed",
    })
    .optional(),
  withConfig: booleanSetting.default(false),
  /**
   * One document back: only these files or folders, each `<storage volume>/<path in it>`
   * (edms-demo-documents/documents/2026/01/report.pdf); the database and the application
   * are left alone. A file newer on the volume than in the backup is kept unless overwrite.
   */
  files: z
    .array(z.string().refine((p) => !p.includes("\n") && !p.split("/").some((part) => part === ".." || part === "."), { error: "must be <storage volume>/<path in it>, without . or .. or a newline" }))
    .min(1, { error: "must name at least one file: <storage volume>/<path in it>" })
    .optional(),
  overwrite: booleanSetting.default(false),
  // `pulumi config set --path ...requestId 2` stores the number 2.
  requestId: z.union([z.string().min(1), z.number().transform(String)]).optional(),
  fromHost: z.string().regex(dockerHostPattern, { error: "must be the old Docker host, unix://… or ssh://user@host" }).optional(),
  /** The backup comes from the off-site repository (a new VM, the old one gone). */
  fromOffsite: booleanSetting.default(false),
  /**
   * The backup comes from this stack's vault, on that Docker host (the off-site copies gone
   * too): streamed from the vault's container through the operator's docker CLI; the VM
   * gets the backup, never the vault's password.
   */
  fromVault: z.string().regex(dockerHostPattern, { error: "must be the vault's Docker host, ssh://user@host (the vault stack's dockerHost)" }).optional(),
  /** Secrets whose mismatch with the backup's may proceed (ENCRYPTION_KEY refuses otherwise). */
  allowSecretMismatch: z.array(z.string().regex(secretNamePattern)).default([]),
});

/** Off-site copies with restic (runtime/lib/offsite.sh): where, and GFS retention there. */
const offsiteSchema = z.strictObject({
  repository: z.string().regex(/^(s3|sftp|rest|b2|azure|gs|swift|rclone):\S+$/, {
    error: "must be a restic repository: s3:https://host/bucket/prefix, sftp:user@host:/path, rest:https://…, b2:…, azure:…, gs:…, swift:…, rclone:…",
  }),
  keepDaily: z.coerce.number().int().min(0).default(7),
  keepWeekly: z.coerce.number().int().min(0).default(4),
  keepMonthly: z.coerce.number().int().min(0).default(12),
  checkSchedule: z.string().default("0 4 * * 0"),
  /** sftp: the server's host key lines, as ssh-keyscan prints them (the only keys trusted). */
  knownHosts: z.string().min(1).optional(),
});

/**
 * Point-in-time recovery (runtime/lib/pitr.sh): the scheduler streams the WAL with a role
 * that has REPLICATION (one pg_hba.conf line lets it in), takes base backups and storage
 * points on schedules of their own. The password makes the whole block secret.
 */
const pitrSchema = z.strictObject({
  enabled: booleanSetting.default(true),
  replicationUser: z.string({ error: "is required: the role with REPLICATION the WAL is streamed as (CREATE ROLE edms_replication LOGIN REPLICATION PASSWORD '…')" }).min(1),
  /** Required, except for the demo EDMS, whose role gets demoReplicationPassword. */
  replicationPassword: z.string().min(1, { error: "must not be empty" }).optional(),
  baseBackupSchedule: z.string().default("30 1 * * *"),
  storageSchedule: z.string().default("0 * * * *"),
  keepDays: z.coerce.number().int().min(1).default(7),
  /** The replication slot's name (default edms_backup_<stack>). */
  slot: z.string().regex(/^[a-z0-9_]{1,63}$/, { error: "must be lower-case letters, digits and _ (a PostgreSQL slot name)" }).optional(),
  /** status fails when the WAL in the volume is further behind than this. */
  maxLagSeconds: z.coerce.number().int().min(1).default(300),
  /** status fails when the server keeps more WAL than this for the slot. */
  maxRetainedMb: z.coerce.number().int().min(1).default(4096),
});

export const envName = /^[A-Z_][A-Z0-9_]*$/;

/** The demo EDMS's database password when dbPassword is not set: a demo, nothing to keep. */
export const demoPassword = "edms-demo-password";
/** The demo's replication role's password when pitr.replicationPassword is not set. */
export const demoReplicationPassword = "edms-demo-replication";

const settingsSchema = z.strictObject({
  /** A stack protects an EDMS unless it is a vault (components/vaultSettings.ts). */
  role: z.literal("protect", { error: "must be protect, or vault for a vault stack" }).optional(),
  dockerHost: z.string({ error: "is required" }).regex(dockerHostPattern, { error: "must be unix:///var/run/docker.sock, ssh://user@host or tcp://host:port" }),
  network: z.string({ error: "is required" }).min(1),
  database: z.strictObject(
    {
      host: z.string().min(1),
      port: z.coerce.number().int().min(1).max(65535).default(5432),
      name: z.string().min(1),
      user: z.string().min(1),
    },
    { error: "is required: an object { host, port, name, user }" },
  ),
  // Required, except for the demo EDMS, whose database gets demoPassword.
  dbPassword: z.string().min(1, { error: "must not be empty" }).optional(),
  storageVolumes: z.array(z.string().min(1)).min(1, { error: "must name at least one Docker volume (documents, versions, media…)" }),
  configPaths: z.array(configPath).default([]),
  schedule: z.string().default("0 2 * * *"),
  timezone: z.string().default("UTC"),
  retentionDays: z.coerce.number().int().min(0).default(7),
  keepLast: z.coerce.number().int().min(1, { error: "must be at least 1: the newest backup is never deleted" }).default(3),
  /** Backups kept for ever (an audit, a legal hold): prune and offsite prune never delete them. */
  pinned: z.array(z.string().regex(backupIdPattern, { error: "must be a backup id, YYYYMMDD_HHMMSS (UTC), as `edms-backup list` prints it" })).default([]),
  /** Grandfather-father-son on top of retentionDays and keepLast, as restic's forget counts. */
  retention: z
    .strictObject({
      keepDaily: z.coerce.number().int().min(0).default(0),
      keepWeekly: z.coerce.number().int().min(0).default(0),
      keepMonthly: z.coerce.number().int().min(0).default(0),
    })
    .optional(),
  /** Restore drills in the scheduler: when (cron, in timezone); "" for none. */
  drill: z.strictObject({ schedule: z.string().default("0 5 * * 6") }).default({ schedule: "0 5 * * 6" }),
  image: z.string().min(1).default("postgres:16-bookworm"),
  /** A prebuilt image with the runtime's tools, used as it is instead of building one from `image`. */
  runtimeImage: z.string().min(1).optional(),
  /** The Docker socket's path on the host, mounted into the restore job (derived from a unix:// dockerHost). */
  dockerSocket: absolutePath.optional(),
  appContainers: z.array(z.string().min(1)).default([]),
  restore: restoreSchema.optional(),
  appSecrets: z.record(z.string().regex(secretNamePattern, { error: "secret names are letters, digits and _" }), z.string()).default({}),
  appEnvFile: configPath.optional(),
  backupVolume: z.string().min(1).optional(),
  protectBackups: booleanSetting.optional(),
  /** Declare a small demo EDMS on the stack's names to protect (the dev stack's first `up`). */
  demo: booleanSetting.default(false),
  offsite: offsiteSchema.optional(),
  pitr: pitrSchema.optional(),
  offsitePassword: z.string().min(1, { error: "must not be empty" }).optional(),
  /** sftp: the private key restic's ssh logs in with (its content). */
  offsiteSshKey: z.string().min(1, { error: "must not be empty" }).optional(),
  /** A dead man's switch (healthchecks.io style) and a webhook for events; URLs hold tokens: secret. */
  notifications: z
    .strictObject({
      pingUrl: z.string().regex(/^https?:\/\/\S+$/, { error: "must be an http(s) URL, as the ping service gives it (https://hc-ping.com/<uuid>)" }).optional(),
      webhookUrl: z.string().regex(/^https?:\/\/\S+$/, { error: "must be an http(s) URL that takes a JSON POST" }).optional(),
    })
    .optional(),
  // The backend's credentials in restic's own variables (AWS_ACCESS_KEY_ID, B2_ACCOUNT_KEY, …).
  offsiteEnv: z
    .record(z.string(), z.string())
    .superRefine((vars, ctx) => {
      for (const name of Object.keys(vars).filter((n) => !envName.test(n))) {
        ctx.addIssue({ code: "custom", path: [name], message: "is not an environment variable's name (A-Z, 0-9 and _, as restic reads them: AWS_ACCESS_KEY_ID…)" });
      }
    })
    .default({}),
});

type Parsed = z.infer<typeof settingsSchema>;

/** Everything the program needs from the stack config, checked, with secrets as secret Outputs. */
export interface Settings extends Omit<Parsed, "dbPassword" | "appSecrets" | "offsitePassword" | "offsiteEnv" | "offsiteSshKey" | "notifications" | "pitr"> {
  /** Point-in-time recovery's settings, without the password (in pitrSecrets). */
  pitr?: Omit<NonNullable<Parsed["pitr"]>, "replicationPassword">;
  /** EDMS_BACKUP_PITR_PGPASSWORD when pitr is on; secret. */
  pitrSecrets: pulumi.Output<Record<string, string>>;
  stack: string;
  project: string;
  dbPassword: pulumi.Output<string>;
  appSecrets: pulumi.Output<Record<string, string>>;
  appSecretNames: string[];
  /** EDMS_BACKUP_PING_URL and EDMS_BACKUP_WEBHOOK_URL, when set; secret. */
  notificationSecrets: pulumi.Output<Record<string, string>>;
  /** RESTIC_PASSWORD and the backend's variables, when offsite is set; secret. */
  offsiteSecrets: pulumi.Output<Record<string, string>>;
  backupVolumeName: string;
  containerName: string;
  protectBackups: boolean;
  /** The Docker socket's path on the target host. */
  dockerSocketPath: string;
}

/** The keys whose values are JSON (objects and lists) in Pulumi's config. */
const structuredKeys = new Set(["pinned", "database", "storageVolumes", "configPaths", "appContainers", "restore", "appSecrets", "offsite", "offsiteEnv", "notifications", "retention", "drill", "pitr"]);

/**
 * Reads the stack config once and checks all of it. Throws one error that names every
 * bad key and how to set it; nothing is declared from a config that does not parse.
 */
export function loadSettings(
  config: Record<string, string> = pulumi.runtime.allConfig(),
  stack: string = pulumi.getStack(),
  project: string = pulumi.getProject(),
  isSecret: (key: string) => boolean = configIsSecret,
): Settings {
  const { raw, result, problems } = parseConfig(settingsSchema, config, structuredKeys, problem, "edms-backup", Object.keys(examples));
  if (result.success) problems.push(...checkSchedule(result.data.schedule, result.data.timezone));
  if (result.success && result.data.drill.schedule !== "") problems.push(...checkSchedule(result.data.drill.schedule, result.data.timezone, "drill.schedule"));
  const demo = raw.demo === true || raw.demo === "true";
  if (raw.dbPassword === undefined && !demo) problems.push(problem("dbPassword", "is required"));
  if (result.success && result.data.demo && (stack === "prod" || stack === "staging")) {
    problems.push(problem("demo", `declares a demo EDMS, which the ${stack} stack never does: remove it (pulumi config rm ${namespace}:demo)`));
  }
  if (result.success && result.data.offsite) {
    problems.push(...checkSchedule(result.data.offsite.checkSchedule, result.data.timezone, "offsite.checkSchedule"));
    if (!result.data.offsitePassword) problems.push(problem("offsitePassword", "is required when offsite is set (restic encrypts the copies with it; keep it apart from the VM)"));
    if (result.data.offsite.repository.startsWith("sftp:")) {
      if (!result.data.offsiteSshKey) problems.push(problem("offsiteSshKey", "is required for an sftp: repository (the key restic's ssh logs in with)"));
      if (!result.data.offsite.knownHosts) {
        problems.push(problem("offsite.knownHosts", "is required for an sftp: repository (the server's host key, as `ssh-keyscan -p PORT HOST` prints it: pulumi config set --path 'edms-backup:offsite.knownHosts' \"$(ssh-keyscan -p PORT HOST)\")"));
      }
    }
  }
  if (result.success && result.data.restore && result.data.restore.confirm !== true && !restoreNeedsNoConfirm(result.data.restore)) {
    problems.push(problem("restore.confirm", "must be true: a restore replaces the database and the storage, so it is only declared when confirmed"));
  }
  if (result.success && result.data.pitr) {
    problems.push(...checkSchedule(result.data.pitr.baseBackupSchedule, result.data.timezone, "pitr.baseBackupSchedule"));
    problems.push(...checkSchedule(result.data.pitr.storageSchedule, result.data.timezone, "pitr.storageSchedule"));
    if (result.data.pitr.enabled && !result.data.pitr.replicationPassword && !demo) {
      problems.push(problem("pitr.replicationPassword", "is required (set it with --secret)"));
    }
  }
  if (problems.length > 0) {
    throw new pulumi.RunError(`edms-backup: the stack config of ${stack} is not valid:\n  - ${problems.join("\n  - ")}`);
  }
  const parsed = result.data!;

  for (const key of ["dbPassword", "appSecrets", "offsitePassword", "offsiteEnv", "offsiteSshKey", "notifications", "pitr"]) {
    // (A pitr block without its password holds nothing secret: the demo's.)
    if (key === "pitr" && !parsed.pitr?.replicationPassword) continue;
    if (`${namespace}:${key}` in config && !isSecret(`${namespace}:${key}`)) {
      pulumi.log.warn(`${namespace}:${key} is stored in plain text: set it with --secret (${examples[key]})`);
    }
  }
  for (const file of parsed.restore?.files ?? []) {
    if (!parsed.storageVolumes.includes(file.split("/")[0])) {
      throw new pulumi.RunError(`edms-backup: ${namespace}:restore.files names '${file}', which is not in a storage volume: start each with one of ${parsed.storageVolumes.join(", ")} (<volume>/<path in it>)`);
    }
  }
  if (parsed.restore?.overwrite && !parsed.restore.files) {
    throw new pulumi.RunError(`edms-backup: ${namespace}:restore.overwrite is for restore.files (files newer on the volume are put back too): remove it, or name the files`);
  }
  if (parsed.restore?.fromOffsite && !parsed.offsite) {
    throw new pulumi.RunError(`edms-backup: ${namespace}:restore.fromOffsite needs ${namespace}:offsite (the repository the backups went to): ${examples.offsite}, with the same offsitePassword`);
  }
  const sources = (["fromOffsite", "fromHost", "fromVault"] as const).filter((k) => parsed.restore?.[k]);
  if (sources.length > 1) {
    throw new pulumi.RunError(`edms-backup: ${namespace}:restore.${sources.join(" and restore.")} name ${sources.length === 2 ? "two" : "three"} sources: keep one`);
  }
  if (parsed.restore?.fromVault === parsed.dockerHost) {
    throw new pulumi.RunError(`edms-backup: ${namespace}:restore.fromVault is this stack's own dockerHost: the vault runs on a host of its own; set it to the vault stack's dockerHost`);
  }
  if (parsed.restore?.fromHost === parsed.dockerHost) {
    throw new pulumi.RunError(`edms-backup: ${namespace}:restore.fromHost is the same host as ${namespace}:dockerHost: remove restore.fromHost to restore on this host, or set it to the old host`);
  }

  const { replicationPassword, ...pitr } = parsed.pitr ?? { replicationPassword: "" };
  return {
    ...parsed,
    pitr: parsed.pitr ? (pitr as Settings["pitr"]) : undefined,
    pitrSecrets: pulumi.secret<Record<string, string>>(parsed.pitr?.enabled ? { EDMS_BACKUP_PITR_PGPASSWORD: replicationPassword ?? demoReplicationPassword } : {}),
    stack,
    project,
    dbPassword: pulumi.secret(parsed.dbPassword ?? demoPassword),
    appSecrets: pulumi.secret(parsed.appSecrets),
    appSecretNames: Object.keys(parsed.appSecrets).sort(),
    notificationSecrets: pulumi.secret<Record<string, string>>({
      ...(parsed.notifications?.pingUrl ? { EDMS_BACKUP_PING_URL: parsed.notifications.pingUrl } : {}),
      ...(parsed.notifications?.webhookUrl ? { EDMS_BACKUP_WEBHOOK_URL: parsed.notifications.webhookUrl } : {}),
    }),
    offsiteSecrets: pulumi.secret<Record<string, string>>(
      parsed.offsite
        ? {
            ...parsed.offsiteEnv,
            RESTIC_PASSWORD: parsed.offsitePassword ?? "",
            ...(parsed.offsiteSshKey ? { EDMS_BACKUP_OFFSITE_SSH_KEY_CONTENT: parsed.offsiteSshKey } : {}),
          }
        : {},
    ),
    backupVolumeName: parsed.backupVolume ?? `edms-backups-${stack}`,
    containerName: `edms-backup-${stack}`,
    protectBackups: parsed.protectBackups ?? stack === "prod",
    dockerSocketPath: parsed.dockerSocket ?? (parsed.dockerHost.startsWith("unix://") ? parsed.dockerHost.slice("unix://".length) : "/var/run/docker.sock"),
  };
}

/**
 * The namespace's keys of a stack's config, structured ones (STRUCTURED) parsed from JSON,
 * checked against SCHEMA: the raw values, zod's result, and one line per problem (PROBLEM
 * names a key and how to set it; an unknown key is "not a setting of OWNER", with SETTINGS).
 */
export function parseConfig<S extends z.ZodType>(
  schema: S,
  config: Record<string, string>,
  structured: Set<string>,
  problem: (key: string, message: string) => string,
  owner: string,
  settings: string[],
): { raw: Record<string, unknown>; result: z.ZodSafeParseResult<z.infer<S>>; problems: string[] } {
  const raw: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [fullKey, value] of Object.entries(config)) {
    if (!fullKey.startsWith(`${namespace}:`)) continue;
    const key = fullKey.slice(namespace.length + 1);
    if (structured.has(key) && typeof value === "string") {
      try {
        raw[key] = JSON.parse(value);
      } catch {
        problems.push(problem(key, "is not a structured value (an object or a list)"));
      }
    } else {
      raw[key] = value;
    }
  }
  const result = schema.safeParse(raw);
  for (const issue of result.success ? [] : result.error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const extra of issue.keys) {
        const key = [...issue.path, extra].join(".");
        problems.push(`${namespace}:${key} is not a setting of ${owner}: remove it (pulumi config rm ${namespace}:${key}) or fix its spelling; the settings are ${settings.join(", ")}`);
      }
      continue;
    }
    problems.push(problem(issue.path.map(String).join("."), issue.message));
  }
  return { raw, result, problems };
}

/** Whether a config key was set with --secret (the SDK has this, its typings do not). */
export function configIsSecret(key: string): boolean {
  const runtime = pulumi.runtime as unknown as { isConfigSecret?: (k: string) => boolean };
  return runtime.isConfigSecret ? runtime.isConfigSecret(key) : true;
}

/** restore.files without overwrite puts back only what is missing or older: no confirm needed. */
export function restoreNeedsNoConfirm(restore: { files?: string[]; overwrite: boolean }): boolean {
  return restore.files !== undefined && !restore.overwrite;
}

function problem(key: string, message: string): string {
  const top = key.split(".")[0];
  const how = examples[top] ? `; set it with: ${examples[top]}` : "";
  return `${namespace}:${key} ${message}${how}`;
}

/**
 * The schedule is checked in the runtime's own cron dialect (components/cron.ts): what the
 * scheduler would refuse, and crash-loop on, is refused here with the key named.
 */
export function checkSchedule(schedule: string, timezone: string, key = "schedule"): string[] {
  try {
    Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch {
    return [problem("timezone", `'${timezone}' is not a time zone (e.g. UTC, Europe/Berlin)`)];
  }
  const why = cronProblem(schedule);
  if (!why) return [];
  return [problem(key, why.startsWith(`'${schedule}'`) ? why : `'${schedule}' is not a valid cron expression: ${why}`)];
}

/** The next time the schedule fires after `from`, as an ISO string. */
export function nextRun(schedule: string, timezone: string, from: Date = new Date()): string {
  try {
    return CronExpressionParser.parse(schedule, { tz: timezone, currentDate: from }).next().toISOString() ?? "";
  } catch {
    return ""; // checked already: only an output is lost
  }
}

/** A short, stable key for a Docker host: resources on different hosts get different names. */
export function hostKey(dockerHost: string): string {
  return crypto.createHash("sha256").update(dockerHost).digest("hex").slice(0, 8);
}
