import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { imageArgs } from "./backupScheduler";
import { BackupVolume, toLabels } from "./backupVolume";
import { envFilePath, envFileText } from "./runtimeEnv";
import { runtimeFiles, runtimeMount } from "./runtimeFiles";
import { hostKey } from "./settings";
import type { VaultSettings } from "./vaultSettings";

export interface EdmsVaultArgs {
  settings: VaultSettings;
}

/** Where the vault's volume is mounted: its repository, state and metrics. */
export const vaultMount = "/vault";

/**
 * The vault of one protected stack, on a Docker host of its own: a volume that is never
 * deleted (retained, protected by default), and a container that pulls the stack's
 * off-site snapshots into a restic repository in that volume (`edms-backup vault
 * schedule`). It holds the vault's password and read access to the source; the protected
 * VM holds nothing of it and never connects to it.
 */
export class EdmsVault extends pulumi.ComponentResource {
  readonly provider: docker.Provider;
  readonly volume: BackupVolume;
  readonly image: docker.RemoteImage;
  readonly container: docker.Container;
  readonly containerName: pulumi.Output<string>;
  readonly volumeName: pulumi.Output<string>;
  readonly listCommand: string;
  readonly statusCommand: string;

  constructor(name: string, args: EdmsVaultArgs, opts?: pulumi.ComponentResourceOptions) {
    super("edms-backup:index:EdmsVault", name, {}, opts);
    const { settings } = args;
    checkArgs(settings);
    const key = hostKey(settings.dockerHost);
    const labels = { "edms-backup.vault-of": settings.source.stack, "edms-backup.stack": settings.stack, "edms-backup.project": settings.project };

    this.provider = new docker.Provider(`${name}-docker-${key}`, { host: settings.dockerHost }, { parent: this });
    this.volume = new BackupVolume(`${name}-volume-${key}`, { volumeName: settings.volumeName, provider: this.provider, protect: settings.protectVault, labels }, { parent: this });
    this.image = new docker.RemoteImage(`${name}-image-${key}`, imageArgs(settings), { parent: this, provider: this.provider });
    const settingsFile = vaultEnv(settings).apply(envFileText);
    this.container = new docker.Container(
      `${name}-${key}`,
      {
        name: settings.containerName,
        image: this.image.imageId,
        command: [`${runtimeMount}/edms-backup`, "vault", "schedule"],
        envs: [`EDMS_BACKUP_ENV_FILE=${envFilePath}`],
        uploads: [
          ...runtimeFiles().map((f) => ({ file: f.file, content: f.content, executable: f.executable })),
          { file: envFilePath, content: pulumi.secret(settingsFile), permissions: "0600" },
        ],
        mounts: [{ type: "volume", source: this.volume.volumeName, target: vaultMount, readOnly: false }],
        ...(settings.network ? { networksAdvanced: [{ name: settings.network }] } : {}),
        restart: "unless-stopped",
        // Unhealthy while the last sync failed or alarmed (kreuzwerker's durations, as the
        // scheduler's). Not waited for: a vault deployed before the stack's first backup
        // alarms until that backup arrives, and `up` must not fail for it.
        healthcheck: { tests: ["CMD", `${runtimeMount}/edms-backup`, "vault", "status"], interval: "1m0s", timeout: "10s", startPeriod: "10m0s", retries: 1 },
        labels: toLabels(labels),
        stopTimeout: 60,
        destroyGraceSeconds: 60,
      },
      { parent: this, provider: this.provider, additionalSecretOutputs: ["uploads"] },
    );
    this.containerName = this.container.name;
    this.volumeName = this.volume.volumeName;
    const dockerCli = `docker --host ${settings.dockerHost} exec ${settings.containerName} ${runtimeMount}/edms-backup vault`;
    this.listCommand = `${dockerCli} list`;
    this.statusCommand = `${dockerCli} status`;
    this.registerOutputs({ containerName: this.containerName, volumeName: this.volumeName, listCommand: this.listCommand, statusCommand: this.statusCommand });
  }
}

/** The vault runtime's settings (runtime/libexec/edms-backup-vault), secret as a whole. */
export function vaultEnv(settings: VaultSettings): pulumi.Output<Record<string, string>> {
  return settings.secrets.apply((secrets): Record<string, string> => ({
    ...secrets,
    RESTIC_REPOSITORY: `${vaultMount}/repository`,
    RESTIC_FROM_REPOSITORY: settings.source.repository,
    EDMS_BACKUP_DIR: vaultMount,
    EDMS_BACKUP_STACK: settings.source.stack,
    EDMS_BACKUP_SCHEDULE: settings.source.schedule,
    EDMS_BACKUP_OFFSITE_KEEP_DAILY: String(settings.source.keepDaily),
    EDMS_BACKUP_OFFSITE_KEEP_WEEKLY: String(settings.source.keepWeekly),
    EDMS_BACKUP_OFFSITE_KEEP_MONTHLY: String(settings.source.keepMonthly),
    EDMS_BACKUP_VAULT_SCHEDULE: settings.syncSchedule,
    EDMS_BACKUP_VAULT_KEEP_DAYS: String(settings.keepDays),
    EDMS_BACKUP_VAULT_KEEP_MONTHLY: String(settings.keepMonthly),
    EDMS_BACKUP_VAULT_GRACE_MINUTES: String(settings.graceMinutes),
    EDMS_BACKUP_VAULT_EXTRA_PER_DAY: String(settings.extraPerDay),
    EDMS_BACKUP_VAULT_MANUAL_PER_DAY: String(settings.manualPerDay),
    EDMS_BACKUP_VAULT_CHECK_SCHEDULE: settings.checkSchedule,
    ...(settings.source.knownHosts ? { EDMS_BACKUP_OFFSITE_KNOWN_HOSTS_CONTENT: settings.source.knownHosts } : {}),
    TZ: settings.timezone,
  }));
}

function checkArgs(settings: VaultSettings): void {
  if (settings.source.stack === settings.stack) {
    throw new Error(`EdmsVault: the vault stack '${settings.stack}' names itself as its source: set edms-backup:source.stack to the protected stack (prod)`);
  }
}
