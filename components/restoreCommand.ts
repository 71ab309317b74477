import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { configFolders, envFileText, runtimeEnv } from "./runtimeEnv";
import { runtimeDir } from "./runtimeFiles";
import { restoreNeedsNoConfirm, type Settings } from "./settings";
import { vaultContainerName } from "./vaultSettings";

/** The script the command runs: a file of its own, so that shellcheck and the tests see it. */
export const restoreScriptPath = path.join(__dirname, "restore.sh");

export interface RestoreCommandArgs {
  settings: Settings;
  /** The backup volume on the target host (it must exist before the restore runs). */
  backupVolumeName: pulumi.Input<string>;
  /** The runtime's image on the target host (the restore job runs in it). */
  imageName: pulumi.Input<string>;
}

/**
 * Restores `restore.backupId` on the stack's Docker host when the stack asks for it. The
 * local command only asks that host's Docker to run the restore there, in a one-off job
 * container (`edms-backup restore-job`: stops the application containers, restores, starts
 * them again), then waits for it and reports its result: a cancelled `pulumi up`, which
 * SIGKILLs the command (pulumi-command runs it with exec.CommandContext), leaves the job
 * running to its end, and the next `up` reports it instead of starting another. The
 * command needs a POSIX shell and the docker CLI only, and reads nothing of the operator's
 * environment but what the docker CLI needs to reach the host.
 * It runs once per backupId + requestId + target and source hosts (its triggers) and never
 * on an unrelated `pulumi up`; a failed restore fails the update with the runtime's message.
 */
export class RestoreCommand extends pulumi.ComponentResource {
  readonly command: command.local.Command;
  readonly backupId: string;
  /** The job container's name on the target host. */
  readonly jobName: string;

  constructor(name: string, args: RestoreCommandArgs, opts?: pulumi.ComponentResourceOptions) {
    super("edms-backup:index:RestoreCommand", name, {}, opts);
    const { settings } = args;
    const restore = settings.restore;
    if (!restore || (restore.confirm !== true && !restoreNeedsNoConfirm(restore))) {
      throw new Error("RestoreCommand: declare it only for a confirmed restore (edms-backup:restore.confirm true)");
    }
    this.backupId = restore.backupId;
    const triggers = [
      restore.backupId, restore.requestId ?? "", settings.dockerHost, restore.fromHost ?? "", ...(restore.fromVault ? [restore.fromVault] : []),
      ...(restore.files ? [JSON.stringify(restore.files), String(restore.overwrite)] : []),
    ];
    this.jobName = `edms-backup-restore-${settings.stack}-${crypto.createHash("sha256").update(JSON.stringify(triggers)).digest("hex").slice(0, 10)}`;

    const environment = pulumi
      .all([runtimeEnv(settings), args.backupVolumeName, args.imageName])
      .apply(([env, volume, image]) => {
        // What the runtime in the job gets, and nothing else.
        const runtimeVars: Record<string, string> = {
          ...env,
          ...(restore.allowSecretMismatch.length > 0 ? { EDMS_BACKUP_ALLOW_SECRET_MISMATCH: restore.allowSecretMismatch.join(",") } : {}),
        };
        return {
          EDMS_RESTORE_DOCKER_HOST: settings.dockerHost,
          EDMS_RESTORE_DOCKER_SOCKET: settings.dockerSocketPath,
          EDMS_RESTORE_ID: restore.backupId,
          EDMS_RESTORE_JOB: this.jobName,
          EDMS_RESTORE_WITH_CONFIG: String(restore.withConfig),
          // One document back: the files' paths in the job (each volume at /edms/storage/<n>).
          EDMS_RESTORE_FILES: (restore.files ?? []).map((file) => jobPath(settings, file)).join("\n"),
          EDMS_RESTORE_OVERWRITE: String(restore.overwrite),
          EDMS_RESTORE_FROM_HOST: restore.fromHost ?? "",
          EDMS_RESTORE_FROM_VAULT: restore.fromVault ?? "",
          EDMS_RESTORE_VAULT_CONTAINER: vaultContainerName(settings.stack),
          EDMS_RESTORE_IMAGE: image,
          EDMS_RESTORE_BASE_IMAGE: settings.image,
          EDMS_RESTORE_NETWORK: settings.network,
          EDMS_RESTORE_BACKUP_VOLUME: volume,
          EDMS_RESTORE_STORAGE_VOLUMES: settings.storageVolumes.join(" "),
          EDMS_RESTORE_APP_CONTAINERS: settings.appContainers.join(" "),
          EDMS_RESTORE_CONFIG_FOLDERS: restoredConfigFolders(settings, restore.withConfig).join("\n"),
          EDMS_RESTORE_RUNTIME_DIR: runtimeDir,
          EDMS_RESTORE_ENV: envFileText(runtimeVars),
        };
      });

    this.command = new command.local.Command(
      name,
      {
        create: fs.readFileSync(restoreScriptPath, "utf8"),
        interpreter: ["/bin/sh", "-c"],
        environment: pulumi.secret(environment),
        // A new backupId or requestId replaces the command, which runs it again; so does a
        // new place for it (the target host, the host it comes from): the same backupId
        // declared against a new VM restores there instead of reporting "already ran".
        triggers,
        // Any other change (containers, paths) must not restore again.
        update: `echo "restore of backup ${restore.backupId} already ran; set edms-backup:restore.requestId to run it again"`,
      },
      // The report names tables, users and secrets' states: kept secret in the state file.
      { parent: this, deleteBeforeReplace: true, additionalSecretOutputs: ["stdout", "stderr"] },
    );
    this.registerOutputs({ backupId: this.backupId, jobName: this.jobName });
  }
}

/** A restore.files entry, <volume>/<path in it>, as the job sees it (components/restore.sh). */
function jobPath(settings: Settings, file: string): string {
  const [volume, ...rest] = file.split("/");
  return [`/edms/storage/${settings.storageVolumes.indexOf(volume) + 1}`, ...rest].filter((part) => part !== "").join("/");
}

/** The host folders of the config files a restore writes: mounted whole into the job. */
function restoredConfigFolders(settings: Settings, withConfig: boolean): string[] {
  return configFolders([...(withConfig ? settings.configPaths : []), ...(settings.appEnvFile ? [settings.appEnvFile] : [])]);
}
