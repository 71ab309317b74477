import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { mustRun, run } from "./run";

// The clusters' own binaries, not Debian's pg_wrapper in PATH: a Perl script that costs
// about 60 ms a call, and a test file makes hundreds of calls.
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
  // A port found free can be taken before the server binds it (test files run two at a
  // time): then another one.
  let port = 0;
  const log = path.join(dir, "log");
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    fs.rmSync(log, { force: true }); // this attempt's reasons only
    const started = await run(`${pgBin}/pg_ctl`, ["-D", data, "-l", log, "-w", "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, "start"], asPostgres);
    if (started.code === 0) break;
    const why = fs.existsSync(log) ? fs.readFileSync(log, "utf8") : "";
    if (attempt >= 5 || !/could not bind|Address already in use/.test(why)) {
      throw new Error(`pg_ctl start failed (exit ${started.code}): ${started.stderr}${why}`);
    }
  }
  const env = { PGHOST: "127.0.0.1", PGPORT: String(port), PGUSER: "edms", PGPASSWORD: password, PGDATABASE: "edms" };
  const cluster: Cluster = {
    env,
    port,
    dir,
    psql: (sql, db = "edms") => mustRun(`${pgBin}/psql`, ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db], { env, input: sql }),
    stop: async () => {
      await run(`${pgBin}/pg_ctl`, ["-D", data, "-m", "immediate", "-w", "stop"], asPostgres);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await cluster.psql("CREATE DATABASE edms", "postgres");
  return cluster;
}

/** Runs psql (or pg_dump) with these arguments and input somewhere: on this host or in a container. */
export type PgExec = (program: "psql" | "pg_dump", args: string[], input?: string) => Promise<string>;

/** PgExec for a server reached from this host with libpq's environment. */
export function hostPg(env: Record<string, string>): PgExec {
  return (program, args, input) => mustRun(`${pgBin}/${program}`, args, { env, input });
}

/**
 * A fingerprint of a database's content: its schema (pg_dump --schema-only), every
 * table's rows in a fixed order, hashed, and the sequences' positions; equal
 * fingerprints mean equal data.
 */
export async function dbFingerprint(env: Record<string, string> | PgExec, db: string): Promise<{ schema: string; tables: Record<string, string> }> {
  const exec = typeof env === "function" ? env : hostPg(env);
  const psql = (sql: string) => exec("psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db], sql);
  const schema = await exec("pg_dump", ["--schema-only", "--no-owner", "--no-privileges", "-d", db]);
  const rows = await psql(
    `SELECT c.relkind::text || format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1`,
  );
  const tables: Record<string, string> = {};
  for (const row of rows.split("\n").filter(Boolean)) {
    const [kind, table] = [row[0], row.slice(1)];
    // A sequence's log_cnt is not data: a restore's setval() resets it.
    const query = kind === "S"
      ? `SELECT last_value || ' ' || is_called FROM ${table}`
      : `SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) || ' ' || count(*) FROM ${table} t`;
    tables[table] = (await psql(query)).trim();
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
