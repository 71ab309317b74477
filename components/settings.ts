import * as crypto from "node:crypto";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { CronExpressionParser } from "cron-parser";
import { z } from "zod";

/** The stack config namespace: every key is `edms-backup:<key>`. */
export const namespace = "edms-backup";

const backupIdPattern = /^\d{8}_\d{6}$/;
const dockerHostPattern = /^(unix|ssh|tcp|npipe):\/\/\S+$/;
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
  image: "pulumi config set edms-backup:image postgres:16-bookworm",
  appContainers: "pulumi config set --path 'edms-backup:appContainers[0]' edms_backend",
  restore: "pulumi config set --path 'edms-backup:restore.backupId' 20260104_020000 && pulumi config set --path 'edms-backup:restore.confirm' true",
  appSecrets: "pulumi config set --secret --path 'edms-backup:appSecrets.SECRET_KEY' <value>",
  appEnvFile: "pulumi config set edms-backup:appEnvFile /srv/edms/.env",
  backupVolume: "pulumi config set edms-backup:backupVolume edms-backups",
  protectBackups: "pulumi config set edms-backup:protectBackups true",
};

const absolutePath = z.string().refine((p) => path.posix.isAbsolute(p) && p !== "/", {
  error: "must be an absolute host path other than /",
});

const restoreSchema = z.strictObject({
  backupId: z.string().regex(backupIdPattern, { error: "must be a backup id, YYYYMMDD_HHMMSS (UTC), as `edms-backup list` prints it" }),
  confirm: z.literal(true, { error: "must be true: a restore replaces the database and the storage, so it is only declared when confirmed" }),
  withConfig: z.boolean().default(false),
  requestId: z.string().min(1).optional(),
  fromHost: z.string().regex(dockerHostPattern, { error: "must be the old Docker host, unix://… or ssh://user@host" }).optional(),
  /** Secrets whose mismatch with the backup's may proceed (ENCRYPTION_KEY refuses otherwise). */
  allowSecretMismatch: z.array(z.string().regex(secretNamePattern)).default([]),
});

const settingsSchema = z.strictObject({
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
  dbPassword: z.string({ error: "is required" }).min(1, { error: "must not be empty" }),
  storageVolumes: z.array(z.string().min(1)).min(1, { error: "must name at least one Docker volume (documents, versions, media…)" }),
  configPaths: z.array(absolutePath).default([]),
  schedule: z.string().default("0 2 * * *"),
  timezone: z.string().default("UTC"),
  retentionDays: z.coerce.number().int().min(0).default(7),
  keepLast: z.coerce.number().int().min(1, { error: "must be at least 1: the newest backup is never deleted" }).default(3),
  image: z.string().min(1).default("postgres:16-bookworm"),
  appContainers: z.array(z.string().min(1)).default([]),
  restore: restoreSchema.optional(),
  appSecrets: z.record(z.string().regex(secretNamePattern, { error: "secret names are letters, digits and _" }), z.string()).default({}),
  appEnvFile: absolutePath.optional(),
  backupVolume: z.string().min(1).optional(),
  protectBackups: z.coerce.boolean().optional(),
});

type Parsed = z.infer<typeof settingsSchema>;

/** Everything the program needs from the stack config, checked, with secrets as secret Outputs. */
export interface Settings extends Omit<Parsed, "dbPassword" | "appSecrets"> {
  stack: string;
  project: string;
  dbPassword: pulumi.Output<string>;
  appSecrets: pulumi.Output<Record<string, string>>;
  appSecretNames: string[];
  backupVolumeName: string;
  containerName: string;
  protectBackups: boolean;
}

/** The keys whose values are JSON (objects and lists) in Pulumi's config. */
const structuredKeys = new Set(["database", "storageVolumes", "configPaths", "appContainers", "restore", "appSecrets"]);

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
  const raw: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [fullKey, value] of Object.entries(config)) {
    if (!fullKey.startsWith(`${namespace}:`)) continue;
    const key = fullKey.slice(namespace.length + 1);
    if (structuredKeys.has(key) && typeof value === "string") {
      try {
        raw[key] = JSON.parse(value);
      } catch {
        problems.push(problem(key, "is not a structured value (an object or a list)"));
      }
    } else {
      raw[key] = value;
    }
  }

  const result = settingsSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) {
      if (issue.code === "unrecognized_keys") {
        for (const extra of issue.keys) {
          const key = [...issue.path, extra].join(".");
          problems.push(`${namespace}:${key} is not a setting of edms-backup: remove it (pulumi config rm ${namespace}:${key}) or fix its spelling; the settings are ${Object.keys(examples).join(", ")}`);
        }
        continue;
      }
      problems.push(problem(issue.path.map(String).join("."), issue.message));
    }
  }
  if (result.success) problems.push(...checkSchedule(result.data.schedule, result.data.timezone));
  if (problems.length > 0) {
    throw new pulumi.RunError(`edms-backup: the stack config of ${stack} is not valid:\n  - ${problems.join("\n  - ")}`);
  }
  const parsed = result.data!;

  for (const key of ["dbPassword", "appSecrets"]) {
    if (`${namespace}:${key}` in config && !isSecret(`${namespace}:${key}`)) {
      pulumi.log.warn(`${namespace}:${key} is stored in plain text: set it with --secret (${examples[key]})`);
    }
  }
  if (parsed.restore?.fromHost === parsed.dockerHost) {
    throw new pulumi.RunError(`edms-backup: ${namespace}:restore.fromHost is the same host as ${namespace}:dockerHost: remove restore.fromHost to restore on this host, or set it to the old host`);
  }

  return {
    ...parsed,
    stack,
    project,
    dbPassword: pulumi.secret(parsed.dbPassword),
    appSecrets: pulumi.secret(parsed.appSecrets),
    appSecretNames: Object.keys(parsed.appSecrets).sort(),
    backupVolumeName: parsed.backupVolume ?? `edms-backups-${stack}`,
    containerName: `edms-backup-${stack}`,
    protectBackups: parsed.protectBackups ?? stack === "prod",
  };
}

/** Whether a config key was set with --secret (the SDK has this, its typings do not). */
function configIsSecret(key: string): boolean {
  const runtime = pulumi.runtime as unknown as { isConfigSecret?: (k: string) => boolean };
  return runtime.isConfigSecret ? runtime.isConfigSecret(key) : true;
}

function problem(key: string, message: string): string {
  const top = key.split(".")[0];
  const how = examples[top] ? `; set it with: ${examples[top]}` : "";
  return `${namespace}:${key} ${message}${how}`;
}

/** The schedule is checked with cron-parser: five fields, in the stack's time zone. */
function checkSchedule(schedule: string, timezone: string): string[] {
  const fields = schedule.trim().split(/\s+/);
  if (fields.length !== 5) {
    return [problem("schedule", `'${schedule}' has ${fields.length} fields; cron takes 5 (minute hour day-of-month month day-of-week)`)];
  }
  try {
    Intl.DateTimeFormat("en-US", { timeZone: timezone });
  } catch {
    return [problem("timezone", `'${timezone}' is not a time zone (e.g. UTC, Europe/Berlin)`)];
  }
  try {
    CronExpressionParser.parse(schedule, { tz: timezone, strict: false });
  } catch (error) {
    return [problem("schedule", `'${schedule}' is not a valid cron expression (${(error as Error).message})`)];
  }
  return [];
}

/** The next time the schedule fires after `from`, as an ISO string. */
export function nextRun(schedule: string, timezone: string, from: Date = new Date()): string {
  return CronExpressionParser.parse(schedule, { tz: timezone, currentDate: from }).next().toISOString() ?? "";
}

/** A short, stable key for a Docker host: resources on different hosts get different names. */
export function hostKey(dockerHost: string): string {
  return crypto.createHash("sha256").update(dockerHost).digest("hex").slice(0, 8);
}
