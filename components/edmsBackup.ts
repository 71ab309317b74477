import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { BackupScheduler } from "./backupScheduler";
import { BackupVolume } from "./backupVolume";
import { DemoEdms } from "./demoEdms";
import { RestoreCommand } from "./restoreCommand";
import { runtimeMount } from "./runtimeFiles";
import { hostKey, nextRun, type Settings } from "./settings";

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

  constructor(name: string, args: EdmsBackupArgs, opts?: pulumi.ComponentResourceOptions) {
    super("edms-backup:index:EdmsBackup", name, {}, opts);
    const { settings } = args;
    const key = hostKey(settings.dockerHost);
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
      { settings, provider: this.provider, backupVolumeName: this.volume.volumeName, labels },
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
    this.registerOutputs({
      volumeName: this.volumeName,
      containerName: this.containerName,
      schedule: this.schedule,
      nextRun: this.nextRun,
      listCommand: this.listCommand,
      verifyCommand: this.verifyCommand,
    });
  }
}
