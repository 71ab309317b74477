import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { booleanSetting, checkSchedule, configIsSecret, dockerHostPattern, envName, namespace, parseConfig } from "./settings";

/** How to set each key of a vault stack, for the error messages. */
const examples: Record<string, string> = {
  role: "pulumi config set edms-backup:role vault",
  dockerHost: "pulumi config set edms-backup:dockerHost ssh://admin@vault-nas.internal",
  source: "pulumi config set --path 'edms-backup:source.stack' prod (and .repository, the prod stack's offsite.repository)",
  vaultPassword: "pulumi config set --secret edms-backup:vaultPassword <a password the protected VM never sees>",
  sourcePassword: "pulumi config set --secret edms-backup:sourcePassword <the protected stack's offsitePassword>",
  sourceEnv: "pulumi config set --secret --path 'edms-backup:sourceEnv.AWS_ACCESS_KEY_ID' <a read-only key id>",
  sourceSshKey: "pulumi config set --secret edms-backup:sourceSshKey < ~/.ssh/edms_vault_read_ed25519",
  syncSchedule: "pulumi config set edms-backup:syncSchedule '0 * * * *'",
  keepDays: "pulumi config set edms-backup:keepDays 90",
  keepMonthly: "pulumi config set edms-backup:keepMonthly 12",
  graceMinutes: "pulumi config set edms-backup:graceMinutes 360",
  extraPerDay: "pulumi config set edms-backup:extraPerDay 1",
  manualPerDay: "pulumi config set edms-backup:manualPerDay 24",
  checkSchedule: "pulumi config set edms-backup:checkSchedule '30 4 * * 0'",
  timezone: "pulumi config set edms-backup:timezone Europe/Berlin",
  image: "pulumi config set edms-backup:image postgres:16-bookworm",
  runtimeImage: "pulumi config set edms-backup:runtimeImage registry.example.org/edms-backup-runtime:16",
  vaultVolume: "pulumi config set edms-backup:vaultVolume edms-vault-prod",
  protectVault: "pulumi config set edms-backup:protectVault true",
  network: "pulumi config set edms-backup:network vault_net",
  notifications: "pulumi config set --secret --path 'edms-backup:notifications.webhookUrl' https://alerts.example.org/edms",
};

const count = (min: number) => z.coerce.number().int().min(min);

/** What the vault copies from: the protected stack's off-site repository, as that stack declares it. */
const sourceSchema = z.strictObject({
  /** The protected stack's name (its snapshots are tagged stack=NAME, host edms-NAME). */
  stack: z.string().regex(/^[A-Za-z0-9._-]+$/, { error: "must be the protected stack's name (letters, digits, . _ -)" }),
  repository: z.string().regex(/^(s3|sftp|rest|b2|azure|gs|swift|rclone):\S+$/, {
    error: "must be the protected stack's offsite.repository (s3:…, sftp:…, rest:…): the vault reads it",
  }),
  /** The protected stack's backup schedule and off-site retention: what explains its snapshots. */
  schedule: z.string().default("0 2 * * *"),
  keepDaily: count(0).default(7),
  keepWeekly: count(0).default(4),
  keepMonthly: count(0).default(12),
  knownHosts: z.string().min(1).optional(),
});

const vaultSchema = z.strictObject({
  role: z.literal("vault"),
  dockerHost: z.string({ error: "is required" }).regex(dockerHostPattern, { error: "must be the vault's own Docker host: ssh://user@host or unix:///var/run/docker.sock" }),
  source: sourceSchema,
  vaultPassword: z.string().min(8, { error: "must be at least 8 characters" }),
  sourcePassword: z.string().min(1, { error: "must not be empty" }),
  sourceEnv: z.record(z.string().regex(envName, { error: "is not an environment variable's name" }), z.string()).default({}),
  sourceSshKey: z.string().min(1).optional(),
  syncSchedule: z.string().default("0 * * * *"),
  keepDays: count(1).default(90),
  keepMonthly: count(0).default(12),
  graceMinutes: count(0).default(360),
  /** Scheduled snapshots a day beyond the schedule's runs; backups by hand a day. */
  extraPerDay: count(0).default(1),
  manualPerDay: count(0).default(24),
  checkSchedule: z.string().default("30 4 * * 0"),
  timezone: z.string().default("UTC"),
  image: z.string().min(1).default("postgres:16-bookworm"),
  runtimeImage: z.string().min(1).optional(),
  vaultVolume: z.string().min(1).optional(),
  protectVault: booleanSetting.default(true),
  network: z.string().min(1).optional(),
  notifications: z
    .strictObject({
      pingUrl: z.string().regex(/^https?:\/\/\S+$/, { error: "must be an http(s) URL" }).optional(),
      webhookUrl: z.string().regex(/^https?:\/\/\S+$/, { error: "must be an http(s) URL that takes a JSON POST" }).optional(),
    })
    .optional(),
});

type Parsed = z.infer<typeof vaultSchema>;

/** A vault stack's settings, checked, its secrets as secret Outputs. */
export interface VaultSettings extends Omit<Parsed, "vaultPassword" | "sourcePassword" | "sourceEnv" | "sourceSshKey" | "notifications"> {
  stack: string;
  project: string;
  /** Everything secret the vault's container gets, in the runtime's variables. */
  secrets: pulumi.Output<Record<string, string>>;
  volumeName: string;
  containerName: string;
}

const structuredKeys = new Set(["source", "sourceEnv", "notifications"]);
const secretKeys = ["vaultPassword", "sourcePassword", "sourceEnv", "sourceSshKey", "notifications"];

/** The stack's role: "vault" for a vault stack, else the stack protects an EDMS. */
export function stackRole(config: Record<string, string> = pulumi.runtime.allConfig()): string {
  return config[`${namespace}:role`] ?? "protect";
}

/**
 * Reads a vault stack's config (edms-backup:role vault) and checks all of it: one error
 * naming every bad key and how to set it.
 */
export function loadVaultSettings(
  config: Record<string, string> = pulumi.runtime.allConfig(),
  stack: string = pulumi.getStack(),
  project: string = pulumi.getProject(),
  isSecret: (key: string) => boolean = configIsSecret,
): VaultSettings {
  const { result, problems } = parseConfig(vaultSchema, config, structuredKeys, problem, "a vault stack", Object.keys(examples));
  if (result.success) {
    const d = result.data;
    problems.push(...checkSchedule(d.syncSchedule, d.timezone, "syncSchedule").map(vaultKey));
    problems.push(...checkSchedule(d.source.schedule, d.timezone, "source.schedule").map(vaultKey));
    if (d.checkSchedule !== "") problems.push(...checkSchedule(d.checkSchedule, d.timezone, "checkSchedule").map(vaultKey));
    if (d.source.repository.startsWith("sftp:")) {
      if (!d.sourceSshKey) problems.push(problem("sourceSshKey", "is required for an sftp: source (a key that can read the protected stack's repository)"));
      if (!d.source.knownHosts) problems.push(problem("source.knownHosts", "is required for an sftp: source (the server's host key, as `ssh-keyscan -p PORT HOST` prints it)"));
    }
  }
  if (problems.length > 0) {
    throw new pulumi.RunError(`edms-backup: the stack config of the vault stack ${stack} is not valid:\n  - ${problems.join("\n  - ")}`);
  }
  const d = result.data!;
  for (const key of secretKeys) {
    if (`${namespace}:${key}` in config && !isSecret(`${namespace}:${key}`)) {
      pulumi.log.warn(`${namespace}:${key} is stored in plain text: set it with --secret (${examples[key]})`);
    }
  }
  return {
    ...d,
    stack,
    project,
    secrets: pulumi.secret<Record<string, string>>({
      ...d.sourceEnv,
      RESTIC_PASSWORD: d.vaultPassword,
      RESTIC_FROM_PASSWORD: d.sourcePassword,
      ...(d.sourceSshKey ? { EDMS_BACKUP_OFFSITE_SSH_KEY_CONTENT: d.sourceSshKey } : {}),
      ...(d.notifications?.pingUrl ? { EDMS_BACKUP_PING_URL: d.notifications.pingUrl } : {}),
      ...(d.notifications?.webhookUrl ? { EDMS_BACKUP_WEBHOOK_URL: d.notifications.webhookUrl } : {}),
    }),
    volumeName: d.vaultVolume ?? `edms-vault-${d.source.stack}`,
    containerName: vaultContainerName(d.source.stack),
  };
}

/** The vault container of a protected stack: a restore from the vault finds it by this name. */
export function vaultContainerName(protectedStack: string): string {
  return `edms-vault-${protectedStack}`;
}

function problem(key: string, message: string): string {
  const how = examples[key.split(".")[0]] ? `; set it with: ${examples[key.split(".")[0]]}` : "";
  return `${namespace}:${key} ${message}${how}`;
}

/** checkSchedule's lines name the protected stack's examples: here the vault's. */
function vaultKey(line: string): string {
  const key = /^edms-backup:([\w.]+) /.exec(line)?.[1] ?? "";
  return problem(key, line.replace(/^edms-backup:[\w.]+ /, "").replace(/; set it with: .*$/, ""));
}
