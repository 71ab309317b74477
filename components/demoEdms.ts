import * as fs from "node:fs";
import * as path from "node:path";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { toLabels } from "./backupVolume";
import type { Settings } from "./settings";

/** The demo's files: its database's SQL and its application container's script. */
export const demoDir = path.join(__dirname, "demo");

export interface DemoEdmsArgs {
  settings: Settings;
  provider: docker.Provider;
  labels: Record<string, string>;
}

/**
 * A small EDMS to protect, for the dev stack's first `pulumi up` (edms-backup:demo): on the
 * stack's own names — the network, a PostgreSQL container (database.host) with EDMS-shaped
 * data loaded by the image's entrypoint, the storage volumes, and an application container
 * (appContainers[0]) that writes sample documents and media into them. Never on staging or
 * prod (settings refuse it there). With pitr on, the database is set up for it as the
 * README asks of yours: the replication role, its one pg_hba.conf line, and
 * max_slot_wal_keep_size bounding what a dead receiver's slot can keep.
 */
export class DemoEdms extends pulumi.ComponentResource {
  readonly database: docker.Container;
  readonly app?: docker.Container;

  constructor(name: string, args: DemoEdmsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("edms-backup:index:DemoEdms", name, {}, opts);
    const { settings, provider } = args;
    checkArgs(settings);
    const child = { parent: this, provider };
    const labels = toLabels({ ...args.labels, "edms-backup.demo": "true" });

    const image = new docker.RemoteImage(`${name}-image`, { name: settings.image, keepLocally: true }, child);
    const network = new docker.Network(`${name}-network`, { name: settings.network, labels }, child);
    const storage = settings.storageVolumes.map((volume, i) => new docker.Volume(`${name}-storage-${i + 1}`, { name: volume, labels }, child));
    const data = new docker.Volume(`${name}-pgdata`, { name: `${settings.database.host}-data`, labels }, child);

    const { user, name: dbName } = settings.database;
    const pitr = settings.pitr?.enabled ? settings.pitr : undefined;
    // The initdb.d scripts run on the database's first start only, as the postgres image runs
    // them (docker-library/postgres docker-entrypoint.sh, docker_process_init_files).
    const uploads: pulumi.Input<docker.types.input.ContainerUpload>[] = [
      { file: "/docker-entrypoint-initdb.d/edms-demo.sql", content: fs.readFileSync(path.join(demoDir, "edms-demo.sql"), "utf8") },
    ];
    if (pitr) {
      uploads.push({
        file: "/docker-entrypoint-initdb.d/edms-demo-replication.sh",
        content: settings.pitrSecrets.apply((secrets) => replicationScript(pitr.replicationUser, secrets.EDMS_BACKUP_PITR_PGPASSWORD ?? "")),
        executable: true,
      });
    }
    this.database = new docker.Container(
      `${name}-db`,
      {
        name: settings.database.host,
        image: image.imageId,
        envs: pulumi.secret(settings.dbPassword.apply((password) => [`POSTGRES_USER=${user}`, `POSTGRES_PASSWORD=${password}`, `POSTGRES_DB=${dbName}`])),
        uploads,
        // A slot whose receiver is gone keeps WAL up to this much, then the server drops it.
        command: pitr ? ["postgres", "-c", `max_slot_wal_keep_size=${demoSlotKeepMb}MB`] : undefined,
        mounts: [{ type: "volume", source: data.name, target: "/var/lib/postgresql/data" }],
        networksAdvanced: [{ name: network.name }],
        restart: "unless-stopped",
        healthcheck: {
          tests: ["CMD", "pg_isready", "-q", "-h", "127.0.0.1", "-U", user, "-d", dbName],
          interval: "5s",
          timeout: "5s",
          retries: 12,
        },
        // The scheduler's first backup finds the data loaded.
        wait: true,
        waitTimeout: 180,
        labels,
      },
      { ...child, additionalSecretOutputs: ["envs", "uploads"] },
    );

    const appName = settings.appContainers[0];
    if (appName) {
      this.app = new docker.Container(
        `${name}-app`,
        {
          name: appName,
          image: image.imageId,
          command: ["bash", "/usr/local/bin/edms-demo-app.sh"],
          uploads: [{ file: "/usr/local/bin/edms-demo-app.sh", content: fs.readFileSync(path.join(demoDir, "edms-demo-app.sh"), "utf8"), executable: true }],
          mounts: storage.map((volume, i) => ({ type: "volume", source: volume.name, target: `/edms/storage/${i + 1}` })),
          networksAdvanced: [{ name: network.name }],
          restart: "unless-stopped",
          labels,
        },
        child,
      );
    }
    this.registerOutputs({ database: this.database.name });
  }
}

/** What the demo's database may keep for a slot (pitr.maxRetainedMb warns before it). */
const demoSlotKeepMb = 2048;

/**
 * The demo's replication setup as an initdb.d script: the role with REPLICATION and the
 * pg_hba.conf line that lets it stream from the scheduler's network (the README's two
 * steps for your own database). The password is inside: the upload is a secret output.
 */
export function replicationScript(role: string, password: string): string {
  // Both as base64 inside the SQL: no quoting of theirs can end a literal or the heredoc.
  const b64 = (text: string) => `convert_from(decode('${Buffer.from(text, "utf8").toString("base64")}', 'base64'), 'UTF8')`;
  const hba = `host replication "${role.replace(/"/g, "")}" all scram-sha-256`;
  return [
    "#!/usr/bin/env bash",
    "# edms-backup demo: the replication role and its pg_hba.conf line (point-in-time recovery).",
    "set -euo pipefail",
    `printf '%s\\n' '${hba.replace(/'/g, "'\\''")}' >>"$PGDATA/pg_hba.conf"`,
    `psql -X -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<'SQL'`,
    `DO $$ BEGIN EXECUTE format('CREATE ROLE %I LOGIN REPLICATION PASSWORD %L', ${b64(role)}, ${b64(password)}); END $$;`,
    "SQL",
    "",
  ].join("\n");
}

function checkArgs(settings: Settings): void {
  if (settings.stack === "prod" || settings.stack === "staging") {
    throw new Error(`DemoEdms: the ${settings.stack} stack never declares the demo EDMS: set edms-backup:demo false`);
  }
}
