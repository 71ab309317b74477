import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { toLabels } from "./backupVolume";
import { configFolders, envFilePath, envFileText, mounts, runtimeEnv } from "./runtimeEnv";
import { runtimeFiles, runtimeMount } from "./runtimeFiles";
import type { Settings } from "./settings";

export interface BackupSchedulerArgs {
  settings: Settings;
  provider: docker.Provider;
  /** The backup volume's name (mounted read-write at /backups). */
  backupVolumeName: pulumi.Input<string>;
  labels: Record<string, string>;
}

/** The build context of the runtime's image (its Dockerfile only). */
export const imageContext = path.join(__dirname, "image");

/**
 * The container that takes the backups: `edms-backup schedule` in the runtime's image (built
 * on the target host from the configured PostgreSQL image, or a prebuilt runtimeImage),
 * with the runtime uploaded from runtime/, its settings in a file of mode 0600 (not in
 * the environment `docker inspect` shows), the storage volumes and the config paths'
 * folders read-only, the backup volume read-write, on the database's network, restarted unless
 * stopped, and a healthcheck that turns unhealthy when a scheduled backup is overdue;
 * `pulumi up` waits until it is healthy.
 */
export class BackupScheduler extends pulumi.ComponentResource {
  readonly image: docker.RemoteImage;
  /** The runtime image's name on the target host (the restore job runs it too). */
  readonly imageName: pulumi.Output<string>;
  readonly container: docker.Container;
  readonly containerName: pulumi.Output<string>;

  constructor(name: string, args: BackupSchedulerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("edms-backup:index:BackupScheduler", name, {}, opts);
    const { settings } = args;
    checkArgs(settings);

    this.image = new docker.RemoteImage(`${name}-image`, imageArgs(settings), { parent: this, provider: args.provider });
    this.imageName = this.image.name;
    const settingsFile = runtimeEnv(settings).apply(envFileText);
    this.container = new docker.Container(
      name,
      {
        name: settings.containerName,
        image: this.image.imageId,
        command: [`${runtimeMount}/edms-backup`, "schedule"],
        envs: [`EDMS_BACKUP_ENV_FILE=${envFilePath}`],
        uploads: [
          ...runtimeFiles().map((f) => ({ file: f.file, content: f.content, executable: f.executable })),
          { file: envFilePath, content: pulumi.secret(settingsFile), permissions: "0600" },
        ],
        mounts: [
          ...settings.storageVolumes.map((volume, i) => ({ type: "volume", source: volume, target: mounts.storage(i), readOnly: true })),
          ...configFolders(settings.configPaths).map((folder) => ({ type: "bind", source: folder, target: mounts.config(folder), readOnly: true })),
          { type: "volume", source: args.backupVolumeName, target: mounts.backups, readOnly: false },
        ],
        networksAdvanced: [{ name: settings.network }],
        restart: "unless-stopped",
        healthcheck: {
          tests: ["CMD", `${runtimeMount}/edms-backup`, "status"],
          // Written as the provider reads them back (Go's time.Duration String, in
          // kreuzwerker/terraform-provider-docker resource_docker_container_funcs.go):
          // "60s" would come back "1m0s" and show a diff on every up after a refresh.
          // Every 15 s: `up` waits for the first healthy check (wait below), and Docker's
          // start_interval needs API 1.44, newer than many hosts' daemons (Debian's 20.10).
          interval: "15s",
          timeout: "10s",
          startPeriod: "2m0s",
          retries: 3,
        },
        // The provider waits for "healthy" (resource_docker_container_funcs.go): an `up`
        // whose scheduler crash-loops fails instead of reporting success.
        wait: true,
        waitTimeout: 180,
        labels: toLabels(args.labels),
        // A backup in progress stops cleanly (its temporary folder is removed) on SIGTERM.
        stopTimeout: 60,
        destroyGraceSeconds: 60,
      },
      { parent: this, provider: args.provider, additionalSecretOutputs: ["uploads"] },
    );
    this.containerName = this.container.name;
    this.registerOutputs({ containerName: this.containerName });
  }
}

/**
 * A configured runtimeImage is used as it is; otherwise the image is built on the target
 * host by its own daemon (terraform-provider-docker sends the context to the provider's
 * host: internal/provider/resource_docker_image_funcs.go), tagged with a hash of base and
 * Dockerfile so that either changing builds a new one.
 */
export function imageArgs(settings: Pick<Settings, "image" | "runtimeImage">): docker.RemoteImageArgs {
  if (settings.runtimeImage) return { name: settings.runtimeImage, keepLocally: true };
  const dockerfile = fs.readFileSync(path.join(imageContext, "Dockerfile"), "utf8");
  const tag = crypto.createHash("sha256").update(`${settings.image}\n${dockerfile}`).digest("hex").slice(0, 12);
  return {
    name: `edms-backup-runtime:${tag}`,
    build: { context: imageContext, dockerfile: "Dockerfile", buildArgs: { BASE: settings.image } },
    keepLocally: true,
  };
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
