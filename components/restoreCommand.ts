import * as fs from "node:fs";
import * as path from "node:path";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { runtimeEnv } from "./runtimeEnv";
import { runtimeDir } from "./runtimeFiles";
import type { Settings } from "./settings";

/** The script the command runs: a file of its own, so that shellcheck and the tests see it. */
export const restoreScriptPath = path.join(__dirname, "restore.sh");

export interface RestoreCommandArgs {
  settings: Settings;
  /** The backup volume on the target host (it must exist before the restore runs). */
  backupVolumeName: pulumi.Input<string>;
}

/**
 * Restores `restore.backupId` on the stack's Docker host when the stack asks for it: stops
 * the application containers, runs `edms-backup restore` in a one-off container, starts
 * them again. It runs once per backupId + requestId + target and source hosts (its
 * triggers) and never on an
 * unrelated `pulumi up`; a failed restore fails the update with the runtime's message.
 */
export class RestoreCommand extends pulumi.ComponentResource {
  readonly command: command.local.Command;
  readonly backupId: string;

  constructor(name: string, args: RestoreCommandArgs, opts?: pulumi.ComponentResourceOptions) {
    super("edms-backup:index:RestoreCommand", name, {}, opts);
    const { settings } = args;
    const restore = settings.restore;
    if (!restore || restore.confirm !== true) {
      throw new Error("RestoreCommand: declare it only for a confirmed restore (edms-backup:restore.confirm true)");
    }
    this.backupId = restore.backupId;

    const environment = pulumi
      .all([runtimeEnv(settings), args.backupVolumeName])
      .apply(([env, volume]) => {
        // What the runtime in the restore container gets, and nothing else.
        const runtimeVars: Record<string, string> = {
          ...env,
          ...(restore.allowSecretMismatch.length > 0 ? { EDMS_BACKUP_ALLOW_SECRET_MISMATCH: restore.allowSecretMismatch.join(",") } : {}),
        };
        return {
          ...runtimeVars,
          DOCKER_HOST: settings.dockerHost,
          EDMS_RESTORE_ID: restore.backupId,
          EDMS_RESTORE_WITH_CONFIG: String(restore.withConfig),
          EDMS_RESTORE_FROM_HOST: restore.fromHost ?? "",
          EDMS_RESTORE_IMAGE: settings.image,
          EDMS_RESTORE_NETWORK: settings.network,
          EDMS_RESTORE_BACKUP_VOLUME: volume,
          EDMS_RESTORE_STORAGE_VOLUMES: settings.storageVolumes.join(" "),
          EDMS_RESTORE_APP_CONTAINERS: settings.appContainers.join(" "),
          EDMS_RESTORE_RUNTIME_DIR: runtimeDir,
          EDMS_RESTORE_STACK: settings.stack,
          EDMS_RESTORE_PASS_VARS: Object.keys(runtimeVars).sort().join(" "),
          EDMS_RESTORE_FROM_OFFSITE: String(restore.fromOffsite),
        };
      });

    this.command = new command.local.Command(
      name,
      {
        create: fs.readFileSync(restoreScriptPath, "utf8"),
        interpreter: ["/bin/bash", "-c"],
        environment: pulumi.secret(environment),
        // A new backupId or requestId replaces the command, which runs it again; so does a
        // new place for it (the target host, the host it comes from): the same backupId
        // declared against a new VM restores there instead of reporting "already ran".
        triggers: [restore.backupId, restore.requestId ?? "", settings.dockerHost, restore.fromHost ?? ""],
        // Any other change (containers, paths) must not restore again.
        update: `echo "restore of backup ${restore.backupId} already ran; set edms-backup:restore.requestId to run it again"`,
      },
      // The report names tables, users and secrets' states: kept secret in the state file.
      { parent: this, deleteBeforeReplace: true, additionalSecretOutputs: ["stdout", "stderr"] },
    );
    this.registerOutputs({ backupId: this.backupId });
  }
}
