import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";

export interface BackupVolumeArgs {
  /** The Docker volume's name on the host (the same on every host of a stack). */
  volumeName: string;
  /** The provider of the host the volume lives on. */
  provider: docker.Provider;
  /** Also protect it from `pulumi destroy` (prod). Deletion never removes data either way. */
  protect: boolean;
  labels: Record<string, string>;
}

/**
 * The Docker volume that holds the backups. No Pulumi operation deletes it: it is retained
 * on delete (destroy, replace, a move to another host), and protected where asked.
 */
export class BackupVolume extends pulumi.ComponentResource {
  readonly volume: docker.Volume;
  readonly volumeName: pulumi.Output<string>;

  constructor(name: string, args: BackupVolumeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("edms-backup:index:BackupVolume", name, {}, opts);
    checkArgs(args);
    this.volume = new docker.Volume(
      name,
      { name: args.volumeName, labels: toLabels(args.labels) },
      { parent: this, provider: args.provider, retainOnDelete: true, protect: args.protect },
    );
    this.volumeName = this.volume.name;
    this.registerOutputs({ volumeName: this.volumeName });
  }
}

function checkArgs(args: BackupVolumeArgs): void {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/.test(args.volumeName)) {
    throw new Error(`BackupVolume: '${args.volumeName}' is not a Docker volume name: use letters, digits, _ . -`);
  }
}

export function toLabels(labels: Record<string, string>): { label: string; value: string }[] {
  return Object.entries(labels).map(([label, value]) => ({ label, value }));
}
