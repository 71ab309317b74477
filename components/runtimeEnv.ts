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
 * The runtime's environment (its contract: PG*, EDMS_BACKUP_*, EDMS_SECRET_*), the same
 * for the scheduled backups and the restore. Secret, because it holds the passwords.
 */
export function runtimeEnv(settings: Settings): pulumi.Output<Record<string, string>> {
  return pulumi.all([settings.dbPassword, settings.appSecrets, settings.offsiteSecrets]).apply(([password, secrets, offsite]) => {
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
      TZ: settings.timezone,
    };
    if (settings.appEnvFile) env.EDMS_BACKUP_APP_ENV_FILE = settings.appEnvFile;
    if (settings.offsite) {
      Object.assign(env, offsite, {
        RESTIC_REPOSITORY: settings.offsite.repository,
        EDMS_BACKUP_STACK: settings.stack,
        EDMS_BACKUP_OFFSITE_KEEP_DAILY: String(settings.offsite.keepDaily),
        EDMS_BACKUP_OFFSITE_KEEP_WEEKLY: String(settings.offsite.keepWeekly),
        EDMS_BACKUP_OFFSITE_KEEP_MONTHLY: String(settings.offsite.keepMonthly),
        EDMS_BACKUP_OFFSITE_CHECK_SCHEDULE: settings.offsite.checkSchedule,
      });
      if (settings.offsite.knownHosts) env.EDMS_BACKUP_OFFSITE_KNOWN_HOSTS_CONTENT = settings.offsite.knownHosts;
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
