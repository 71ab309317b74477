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
 * prod (settings refuse it there).
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
    this.database = new docker.Container(
      `${name}-db`,
      {
        name: settings.database.host,
        image: image.imageId,
        envs: pulumi.secret(settings.dbPassword.apply((password) => [`POSTGRES_USER=${user}`, `POSTGRES_PASSWORD=${password}`, `POSTGRES_DB=${dbName}`])),
        uploads: [{ file: "/docker-entrypoint-initdb.d/edms-demo.sql", content: fs.readFileSync(path.join(demoDir, "edms-demo.sql"), "utf8") }],
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
      { ...child, additionalSecretOutputs: ["envs"] },
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

function checkArgs(settings: Settings): void {
  if (settings.stack === "prod" || settings.stack === "staging") {
    throw new Error(`DemoEdms: the ${settings.stack} stack never declares the demo EDMS: set edms-backup:demo false`);
  }
}
