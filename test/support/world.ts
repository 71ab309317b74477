import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type Cluster, startCluster } from "./pg";
import { edmsSchemaSql, makeStorageTree } from "./fixtures";
import { edmsBackup, lastLine, mustRun, run, type RunOptions } from "./run";

/** A host-side EDMS: a PostgreSQL cluster with EDMS data, two storage folders, config files. */
export interface World {
  cluster: Cluster;
  root: string;
  backupDir: string;
  storage: string[];
  configRoot: string;
  configPaths: string[];
  env: Record<string, string>;
  edms(args: string[], options?: RunOptions): ReturnType<typeof run>;
  backup(env?: Record<string, string>): Promise<string>;
  cleanup(): Promise<void>;
}

export async function makeWorld(options: { scale?: number } = {}): Promise<World> {
  const cluster = await startCluster();
  await cluster.psql(edmsSchemaSql(options.scale ?? 1));
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "edms-world-"));
  fs.chmodSync(root, 0o755); // tests also run edms-backup as a non-root user
  const storage = [path.join(root, "storage", "documents"), path.join(root, "storage", "media")];
  await makeStorageTree(storage[0], "docs");
  await makeStorageTree(storage[1], "media");
  const configRoot = path.join(root, "host");
  fs.mkdirSync(path.join(configRoot, "srv", "edms", "nginx"), { recursive: true });
  fs.writeFileSync(path.join(configRoot, "srv", "edms", ".env"), "SECRET_KEY=abc\nDATABASE_URL=postgresql://edms@db/edms\n", { mode: 0o600 });
  fs.writeFileSync(path.join(configRoot, "srv", "edms", "nginx", "edms.conf"), "server { listen 80; }\n");
  const configPaths = ["/srv/edms/.env", "/srv/edms/nginx", "/srv/edms/docker-compose.prod.yml"];
  const backupDir = path.join(root, "backups");
  const env = {
    ...cluster.env,
    EDMS_BACKUP_DIR: backupDir,
    EDMS_BACKUP_STORAGE_DIRS: storage.join(":"),
    EDMS_BACKUP_CONFIG_PATHS: configPaths.join(":"),
    EDMS_BACKUP_CONFIG_ROOT: configRoot,
  };
  const edms = (args: string[], opts: RunOptions = {}) => run(edmsBackup, args, { ...opts, env: { ...env, ...opts.env } });
  return {
    cluster,
    root,
    backupDir,
    storage,
    configRoot,
    configPaths,
    env,
    edms,
    backup: async (extra = {}) => lastLine(await mustRun(edmsBackup, ["backup"], { env: { ...env, ...extra } })),
    cleanup: async () => {
      await cluster.stop();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The entries of a folder, for "nothing else changed" checks. */
export function listDir(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}
