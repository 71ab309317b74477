import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { mustRun, run } from "./run";

const pgBin = "/usr/lib/postgresql/15/bin";

export interface Cluster {
  env: Record<string, string>;
  port: number;
  dir: string;
  psql(sql: string, db?: string): Promise<string>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as net.AddressInfo;
      server.close(() => resolve(address.port));
    });
    server.on("error", reject);
  });
}

/**
 * A throwaway PostgreSQL 15 cluster on 127.0.0.1 with password (scram) authentication,
 * owned by the system user postgres (initdb refuses root). The superuser is `edms`.
 */
export async function startCluster(password = "s3cret pw"): Promise<Cluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edms-pg-"));
  fs.chmodSync(dir, 0o755);
  const data = path.join(dir, "data");
  const pwfile = path.join(dir, "pw");
  fs.writeFileSync(pwfile, `${password}\n`);
  await mustRun("chown", ["-R", "postgres:postgres", dir]);
  const asPostgres = { user: "postgres" } as const;
  await mustRun(`${pgBin}/initdb`, ["-D", data, "-U", "edms", `--pwfile=${pwfile}`, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"], asPostgres);
  const port = await freePort();
  await mustRun(`${pgBin}/pg_ctl`, ["-D", data, "-l", path.join(dir, "log"), "-w", "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, "start"], asPostgres);
  const env = { PGHOST: "127.0.0.1", PGPORT: String(port), PGUSER: "edms", PGPASSWORD: password, PGDATABASE: "edms" };
  const cluster: Cluster = {
    env,
    port,
    dir,
    psql: (sql, db = "edms") => mustRun("psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db], { env, input: sql }),
    stop: async () => {
      await run(`${pgBin}/pg_ctl`, ["-D", data, "-m", "immediate", "-w", "stop"], asPostgres);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await cluster.psql("CREATE DATABASE edms", "postgres");
  return cluster;
}

/**
 * A fingerprint of a database's content: its schema (pg_dump --schema-only) and every
 * table's rows in a fixed order, hashed; equal fingerprints mean equal data.
 */
export async function dbFingerprint(env: Record<string, string>, db: string): Promise<{ schema: string; tables: Record<string, string> }> {
  const e = { ...env, PGDATABASE: db };
  const schema = await mustRun("pg_dump", ["--schema-only", "--no-owner", "--no-privileges", "-d", db], { env: e });
  const rows = await mustRun("psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db], {
    env: e,
    input: `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1`,
  });
  const tables: Record<string, string> = {};
  for (const table of rows.split("\n").filter(Boolean)) {
    tables[table] = (
      await mustRun("psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db], {
        env: e,
        input: `SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) || ' ' || count(*) FROM ${table} t`,
      })
    ).trim();
  }
  return { schema: normaliseSchema(schema), tables };
}

function normaliseSchema(schema: string): string {
  // pg_dump's header names the dump's own version and a random \restrict key (15.14+).
  return schema
    .split("\n")
    .filter((line) => !line.startsWith("--") && !line.startsWith("\\restrict") && !line.startsWith("\\unrestrict"))
    .join("\n");
}
