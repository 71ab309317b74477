import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { toLabels } from "./backupVolume";
import { mounts, runtimeEnv } from "./runtimeEnv";
import { runtimeFiles, runtimeMount } from "./runtimeFiles";
import type { Settings } from "./settings";

export interface BackupSchedulerArgs {
  settings: Settings;
  provider: docker.Provider;
  /** The backup volume's name (mounted read-write at /backups). */
  backupVolumeName: pulumi.Input<string>;
  labels: Record<string, string>;
}

/**
 * The container that takes the backups: `edms-backup schedule` in the configured image
 * (the official postgres image: its pg_dump must be at least the server's major), with
 * the runtime uploaded from runtime/, the storage volumes and config paths read-only, the
 * backup volume read-write, on the database's network, restarted unless stopped, and a
 * healthcheck that turns unhealthy when a scheduled backup is overdue.
 */
export class BackupScheduler extends pulumi.ComponentResource {
  readonly image: docker.RemoteImage;
  readonly container: docker.Container;
  readonly containerName: pulumi.Output<string>;

  constructor(name: string, args: BackupSchedulerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("edms-backup:index:BackupScheduler", name, {}, opts);
    const { settings } = args;
    checkArgs(settings);

    this.image = new docker.RemoteImage(
      `${name}-image`,
      { name: settings.image, keepLocally: true },
      { parent: this, provider: args.provider },
    );
    const env = runtimeEnv(settings).apply((vars) => Object.entries(vars).map(([k, v]) => `${k}=${v}`));
    this.container = new docker.Container(
      name,
      {
        name: settings.containerName,
        image: this.image.imageId,
        command: [`${runtimeMount}/edms-backup`, "schedule"],
        envs: pulumi.secret(env),
        uploads: runtimeFiles().map((f) => ({ file: f.file, content: f.content, executable: f.executable })),
        mounts: [
          ...settings.storageVolumes.map((volume, i) => ({ type: "volume", source: volume, target: mounts.storage(i), readOnly: true })),
          ...settings.configPaths.map((hostPath) => ({ type: "bind", source: hostPath, target: mounts.config(hostPath), readOnly: true })),
          { type: "volume", source: args.backupVolumeName, target: mounts.backups, readOnly: false },
        ],
        networksAdvanced: [{ name: settings.network }],
        restart: "unless-stopped",
        healthcheck: {
          tests: ["CMD", `${runtimeMount}/edms-backup`, "status"],
          // Written as the provider reads them back (Go's time.Duration String, in
          // kreuzwerker/terraform-provider-docker resource_docker_container_funcs.go):
          // "60s" would come back "1m0s" and show a diff on every up after a refresh.
          interval: "1m0s",
          timeout: "30s",
          startPeriod: "2m0s",
          retries: 2,
        },
        labels: toLabels(args.labels),
        // A backup in progress stops cleanly (its temporary folder is removed) on SIGTERM.
        stopTimeout: 60,
        destroyGraceSeconds: 60,
      },
      { parent: this, provider: args.provider, additionalSecretOutputs: ["envs"] },
    );
    this.containerName = this.container.name;
    this.registerOutputs({ containerName: this.containerName });
  }
}

function checkArgs(settings: Settings): void {
  const seen = new Set<string>();
  for (const volume of settings.storageVolumes) {
    if (seen.has(volume)) throw new Error(`BackupScheduler: storage volume '${volume}' is named twice in edms-backup:storageVolumes: name each once`);
    seen.add(volume);
  }
  if (settings.storageVolumes.includes(settings.backupVolumeName)) {
    throw new Error(`BackupScheduler: the backup volume '${settings.backupVolumeName}' is also a storage volume: back up into a volume of its own (edms-backup:backupVolume)`);
  }
}
