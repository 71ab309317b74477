import { execFileSync } from "node:child_process";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { BackupScheduler } from "./backupScheduler";
import { BackupVolume } from "./backupVolume";
import { DemoEdms } from "./demoEdms";
import { RestoreCommand } from "./restoreCommand";
import { runtimeMount } from "./runtimeFiles";
import { hostKey, namespace, nextRun, type Settings } from "./settings";

export interface EdmsBackupArgs {
  settings: Settings;
}

/**
 * Backups for one stack: the backup volume, the scheduled backup container and, when the
 * stack asks for one, a restore. The Docker resources are named after their host (a short
 * hash of dockerHost): pointing the stack at a new host creates them there and deletes the
 * old scheduler through the old host's provider, while the old backup volume is retained.
 */
export class EdmsBackup extends pulumi.ComponentResource {
  readonly provider: docker.Provider;
  readonly volume: BackupVolume;
  readonly scheduler: BackupScheduler;
  readonly restore?: RestoreCommand;
  readonly demo?: DemoEdms;
  readonly volumeName: pulumi.Output<string>;
  readonly containerName: pulumi.Output<string>;
  readonly schedule: string;
  readonly nextRun: string;
  readonly listCommand: string;
  readonly verifyCommand: string;
  readonly metricsCommand: string;
  readonly drillCommand: string;

  constructor(name: string, args: EdmsBackupArgs, opts?: pulumi.ComponentResourceOptions) {
    super("edms-backup:index:EdmsBackup", name, {}, opts);
    const { settings } = args;
    const key = hostKey(settings.dockerHost);
    checkOneAddressPerDaemon(settings);
    const labels = { "edms-backup.stack": settings.stack, "edms-backup.project": settings.project };

    this.provider = new docker.Provider(`${name}-docker-${key}`, { host: settings.dockerHost }, { parent: this });
    this.volume = new BackupVolume(
      `${name}-backups-${key}`,
      { volumeName: settings.backupVolumeName, provider: this.provider, protect: settings.protectBackups, labels },
      { parent: this },
    );
    if (settings.demo) {
      this.demo = new DemoEdms(`${name}-demo-${key}`, { settings, provider: this.provider, labels }, { parent: this });
    }
    this.scheduler = new BackupScheduler(
      `${name}-scheduler-${key}`,
      { settings, provider: this.provider, backupVolumeName: this.volume.volumeName, labels: { ...labels, [dockerHostLabel]: settings.dockerHost } },
      { parent: this, dependsOn: this.demo ? [this.demo] : [] },
    );

    const dependsOn: pulumi.Resource[] = [this.volume, this.scheduler];
    if (settings.restore?.fromHost) {
      // The old host's volume stays declared while backups are copied from it: it is
      // neither deleted nor, on prod, a protected resource the update would try to delete.
      const fromKey = hostKey(settings.restore.fromHost);
      const oldProvider = new docker.Provider(`${name}-docker-${fromKey}`, { host: settings.restore.fromHost }, { parent: this });
      dependsOn.push(
        new BackupVolume(
          `${name}-backups-${fromKey}`,
          { volumeName: settings.backupVolumeName, provider: oldProvider, protect: settings.protectBackups, labels },
          { parent: this },
        ),
      );
    }
    if (settings.restore) {
      this.restore = new RestoreCommand(
        `${name}-restore`,
        { settings, backupVolumeName: this.volume.volumeName, imageName: this.scheduler.imageName },
        { parent: this, dependsOn },
      );
    }

    this.volumeName = this.volume.volumeName;
    this.containerName = this.scheduler.containerName;
    this.schedule = `${settings.schedule} (${settings.timezone})`;
    this.nextRun = nextRun(settings.schedule, settings.timezone);
    const dockerCli = `docker --host ${settings.dockerHost} exec ${settings.containerName} ${runtimeMount}/edms-backup`;
    this.listCommand = `${dockerCli} list`;
    this.verifyCommand = `${dockerCli} verify <ID>`;
    this.metricsCommand = `${dockerCli} metrics`;
    this.drillCommand = `${dockerCli} drill`;
    this.registerOutputs({
      volumeName: this.volumeName,
      containerName: this.containerName,
      schedule: this.schedule,
      nextRun: this.nextRun,
      listCommand: this.listCommand,
      verifyCommand: this.verifyCommand,
      metricsCommand: this.metricsCommand,
      drillCommand: this.drillCommand,
    });
  }
}

/** The scheduler's label naming the address the stack reaches its daemon by. */
const dockerHostLabel = "edms-backup.docker-host";

/**
 * One daemon under two addresses (a unix socket and an ssh alias of the same VM) would get
 * the stack's scheduler and backup volume declared twice: the second container create
 * fails on its name, and two resources own one volume. The daemon is asked, with the
 * docker CLI, which address its scheduler was declared through; a daemon that does not
 * answer is left to the provider. EDMS_BACKUP_NO_DAEMON_CHECK=1 skips the question (a
 * preview on a machine without the docker CLI).
 */
function checkOneAddressPerDaemon(settings: Settings): void {
  if (process.env.EDMS_BACKUP_NO_DAEMON_CHECK) return;
  const declaredWith = dockerOutput(settings.dockerHost, ["inspect", "--format", `{{index .Config.Labels "${dockerHostLabel}"}}`, settings.containerName]);
  if (!declaredWith || declaredWith === settings.dockerHost) return;
  const fromHost = settings.restore?.fromHost === declaredWith ? ` and remove ${namespace}:restore.fromHost (its backups are already in this daemon's volume)` : "";
  throw new pulumi.RunError(
    `edms-backup: the Docker daemon at ${settings.dockerHost} already runs this stack's scheduler ${settings.containerName}, declared through ${declaredWith}: ` +
      `both addresses reach one daemon, where the stack would declare its scheduler and backup volume twice. ` +
      `Keep one address: set ${namespace}:dockerHost back to ${declaredWith}${fromHost}`,
  );
}

/** The docker CLI's output for HOST, or undefined when it fails; in a closed environment. */
function dockerOutput(host: string, args: string[]): string | undefined {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/", DOCKER_HOST: host };
  for (const name of ["SSH_AUTH_SOCK", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"]) {
    if (process.env[name]) env[name] = process.env[name]!;
  }
  try {
    return execFileSync("docker", args, { env, timeout: 20_000, stdio: ["ignore", "pipe", "ignore"], encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
}
