import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { Settings } from "./settings";

/** Mount points shared by the backup and the restore containers. */
export const mounts = {
  backups: "/backups",
  storage: (i: number) => `/edms/storage/${i + 1}`,
  configRoot: "/edms/config",
  config: (hostPath: string) => `/edms/config${hostPath}`,
};

/**
 * The runtime's environment (its contract: PG*, EDMS_BACKUP_*, EDMS_SECRET_*, restic's),
 * the same for the scheduled backups and the restore. Secret, because it holds the
 * passwords and the notification URLs' tokens.
 */
export function runtimeEnv(settings: Settings): pulumi.Output<Record<string, string>> {
  return pulumi.all([settings.dbPassword, settings.appSecrets, settings.offsiteSecrets, settings.notificationSecrets, settings.pitrSecrets]).apply(([password, secrets, offsite, notifications, pitr]) => {
    const env: Record<string, string> = {
      PGHOST: settings.database.host,
      PGPORT: String(settings.database.port),
      PGUSER: settings.database.user,
      PGPASSWORD: password,
      PGDATABASE: settings.database.name,
      EDMS_BACKUP_DIR: mounts.backups,
      EDMS_BACKUP_STORAGE_DIRS: settings.storageVolumes.map((_, i) => mounts.storage(i)).join(":"),
      EDMS_BACKUP_CONFIG_PATHS: settings.configPaths.join(":"),
      EDMS_BACKUP_CONFIG_ROOT: mounts.configRoot,
      EDMS_BACKUP_RETENTION_DAYS: String(settings.retentionDays),
      EDMS_BACKUP_KEEP_LAST: String(settings.keepLast),
      EDMS_BACKUP_SCHEDULE: settings.schedule,
      EDMS_BACKUP_STACK: settings.stack,
      EDMS_BACKUP_DRILL_SCHEDULE: settings.drill.schedule,
      TZ: settings.timezone,
      ...notifications,
    };
    if (settings.appEnvFile) env.EDMS_BACKUP_APP_ENV_FILE = settings.appEnvFile;
    if (settings.pinned.length > 0) env.EDMS_BACKUP_PINNED = settings.pinned.join(" ");
    if (settings.retention) {
      env.EDMS_BACKUP_KEEP_DAILY = String(settings.retention.keepDaily);
      env.EDMS_BACKUP_KEEP_WEEKLY = String(settings.retention.keepWeekly);
      env.EDMS_BACKUP_KEEP_MONTHLY = String(settings.retention.keepMonthly);
    }
    // The demo's first backup within minutes, not at the schedule's next match.
    if (settings.demo) env.EDMS_BACKUP_FIRST_AT_START = "true";
    if (settings.offsite) {
      Object.assign(env, offsite, {
        RESTIC_REPOSITORY: settings.offsite.repository,
        EDMS_BACKUP_OFFSITE_KEEP_DAILY: String(settings.offsite.keepDaily),
        EDMS_BACKUP_OFFSITE_KEEP_WEEKLY: String(settings.offsite.keepWeekly),
        EDMS_BACKUP_OFFSITE_KEEP_MONTHLY: String(settings.offsite.keepMonthly),
        EDMS_BACKUP_OFFSITE_CHECK_SCHEDULE: settings.offsite.checkSchedule,
      });
      if (settings.offsite.knownHosts) env.EDMS_BACKUP_OFFSITE_KNOWN_HOSTS_CONTENT = settings.offsite.knownHosts;
    }
    if (settings.pitr?.enabled) {
      Object.assign(env, pitr, {
        EDMS_BACKUP_PITR: "true",
        EDMS_BACKUP_PITR_PGUSER: settings.pitr.replicationUser,
        EDMS_BACKUP_BASEBACKUP_SCHEDULE: settings.pitr.baseBackupSchedule,
        EDMS_BACKUP_STORAGE_SCHEDULE: settings.pitr.storageSchedule,
        EDMS_BACKUP_PITR_KEEP_DAYS: String(settings.pitr.keepDays),
        EDMS_BACKUP_WAL_MAX_LAG_SECONDS: String(settings.pitr.maxLagSeconds),
        EDMS_BACKUP_WAL_MAX_RETAINED_MB: String(settings.pitr.maxRetainedMb),
      });
      if (settings.pitr.slot) env.EDMS_BACKUP_WAL_SLOT = settings.pitr.slot;
    }
    for (const [name, value] of Object.entries(secrets)) env[`EDMS_SECRET_${name}`] = value;
    return env;
  });
}

/** Where the runtime's settings file is uploaded in a container (runtime/lib/envfile.sh). */
export const envFilePath = "/run/edms-backup/env";

/**
 * The runtime's settings as the file runtime/lib/envfile.sh reads: NAME=VALUE lines, a
 * newline written \n and a backslash \\ (so that nothing else reads as an escape).
 */
export function envFileText(env: Record<string, string>): string {
  return Object.keys(env)
    .sort()
    .map((name) => `${name}=${env[name].replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}\n`)
    .join("");
}

/**
 * The host folders to bind-mount for config files: each file's folder, not the file. A
 * bind mount of a single file pins its inode, and editors, `--with-config` restores and
 * deploy tools replace a file by rename: the container would go on reading the old one.
 * A folder inside another one in the list is left out (the outer mount holds it).
 */
export function configFolders(paths: string[]): string[] {
  const folders = [...new Set(paths.map((p) => path.posix.dirname(path.posix.normalize(p))))].sort();
  return folders.filter((f) => !folders.some((outer) => outer !== f && (outer === "/" || f.startsWith(`${outer}/`))));
}
