import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { changeStorageTree, edmsUsers, djangoVerify, snapshotTree } from "../support/fixtures";
import { dbFingerprint, startCluster, type Cluster } from "../support/pg";
import { edmsBackup, mustRun, run } from "../support/run";
import { listDir, makeWorld, type World } from "../support/world";

let world: World;
let id: string;
let original: { db: Awaited<ReturnType<typeof dbFingerprint>>; storage: ReturnType<typeof snapshotTree>[] };
const secrets = { EDMS_SECRET_SECRET_KEY: "django-secret-1", EDMS_SECRET_ENCRYPTION_KEY: "enc-key-1" };

beforeAll(async () => {
  world = await makeWorld();
  original = { db: await dbFingerprint(world.env, "edms"), storage: world.storage.map(snapshotTree) };
  id = await world.backup(secrets);
});
afterAll(async () => {
  await world?.cleanup();
});

/** How the restored documents_documenttext values (over 2 kB) are compressed: "lz4" or "pglz". */
async function textCompression(cluster: Cluster): Promise<string> {
  return (await cluster.psql("SELECT string_agg(DISTINCT pg_column_compression(text), ',') FROM documents_documenttext", "edms")).trim();
}

/** An empty new instance: a fresh PostgreSQL (empty database edms) and empty folders. */
async function newInstance(): Promise<{ cluster: Cluster; env: Record<string, string>; storage: string[]; configRoot: string; done(): Promise<void> }> {
  const cluster = await startCluster("new instance password");
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "edms-new-"));
  const storage = [path.join(base, "documents"), path.join(base, "media")];
  storage.forEach((dir) => fs.mkdirSync(dir));
  const configRoot = path.join(base, "host");
  fs.mkdirSync(configRoot);
  const env = {
    ...cluster.env,
    EDMS_BACKUP_DIR: world.backupDir,
    EDMS_BACKUP_STORAGE_DIRS: storage.join(":"),
    EDMS_BACKUP_CONFIG_PATHS: world.configPaths.join(":"),
    EDMS_BACKUP_CONFIG_ROOT: configRoot,
  };
  return { cluster, env, storage, configRoot, done: async () => { await cluster.stop(); fs.rmSync(base, { recursive: true, force: true }); } };
}

/** Makes SHA256SUMS agree with FILES (paths inside backup DIR) after a test changed them. */
async function resum(dir: string, files: string[]): Promise<void> {
  const fresh = new Map<string, string>();
  for (const file of files) fresh.set(file, (await mustRun("sha256sum", [file], { cwd: dir })).trim());
  const sums = fs.readFileSync(path.join(dir, "SHA256SUMS"), "utf8").split("\n")
    .map((line) => fresh.get(line.slice(line.indexOf("  ") + 2)) ?? line);
  fs.writeFileSync(path.join(dir, "SHA256SUMS"), sums.join("\n"));
}

/** A restore onto the empty new instance TARGET that must fail with CAUSE and leave it as it was. */
async function expectRefusedOnEmpty(target: Awaited<ReturnType<typeof newInstance>>, backupId: string, env: Record<string, string>, cause: RegExp): Promise<string> {
  const databases = () => target.cluster.psql("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database", "postgres");
  const before = await databases();
  // Nothing left in TMPDIR either: not the checks' log, not the load's, not the work of the
  // checks stopped halfway.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "edms-tmpdir-"));
  try {
    const result = await run(edmsBackup, ["restore", backupId, "--yes"], { env: { ...target.env, ...env, TMPDIR: tmp } });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(cause);
    expect(await databases()).toBe(before);
    expect(await target.cluster.psql("SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")).toBe("0\n");
    target.storage.forEach((dir) => expect(listDir(dir)).toEqual([]));
    expect(fs.readdirSync(tmp)).toEqual([]);
    return result.stderr;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

describe("restore onto a new instance", () => {
  it("brings back the database, the storage and the users' passwords; config only with --with-config", async () => {
    const target = await newInstance();
    try {
      const result = await run(edmsBackup, ["restore", id, "--yes"], { env: { ...target.env, ...secrets } });
      expect(result.stderr).not.toMatch(/differs/);
      expect(result.code).toBe(0);
      expect(await dbFingerprint(target.cluster.env, "edms")).toEqual(original.db);
      target.storage.forEach((dir, i) => expect(snapshotTree(dir)).toEqual(original.storage[i]));
      expect(listDir(target.configRoot)).toEqual([]);
      expect(result.stdout).toMatch(/users: 4\n/);
      expect(result.stdout).toMatch(/documents: 200\n/);
      expect(result.stdout).toMatch(/audit trails: 1000\n/);
      expect(result.stdout).toMatch(/public\.users_user +4 rows, as in the manifest/);
      expect(result.stdout).toContain("Safety backup: none needed");
      expect(result.stdout).toContain("log in again");
      const owner = await target.cluster.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'edms'", "postgres");
      expect(owner.trim()).toBe("edms");
      // Large values were compressed with lz4 as they were loaded (the faster method).
      expect(await textCompression(target.cluster)).toBe("lz4");
      const hashes = await target.cluster.psql("SELECT username || ' ' || password FROM users_user ORDER BY id");
      for (const [i, line] of hashes.trim().split("\n").entries()) {
        const [username, hash] = line.split(" ");
        expect(username).toBe(edmsUsers[i].username);
        expect(djangoVerify(edmsUsers[i].password, hash)).toBe(true);
      }

      const withConfig = await run(edmsBackup, ["restore", id, "--yes", "--with-config"], { env: target.env });
      expect(withConfig.code).toBe(0);
      expect(fs.readFileSync(path.join(target.configRoot, "srv/edms/.env"), "utf8")).toContain("SECRET_KEY=abc");
      expect(fs.statSync(path.join(target.configRoot, "srv/edms/.env")).mode & 0o777).toBe(0o600);
      expect(fs.readFileSync(path.join(target.configRoot, "srv/edms/nginx/edms.conf"), "utf8")).toContain("listen 80");
      expect(withConfig.stdout).toMatch(/Safety backup of the state before: \d{8}_\d{6}/);
    } finally {
      await target.done();
    }
  });

  it("refuses a corrupted backup, leaving the empty instance as it was (checked while staging)", async () => {
    const bad = "20010202_000000";
    await mustRun("cp", ["-a", path.join(world.backupDir, id), path.join(world.backupDir, bad)]);
    fs.appendFileSync(path.join(world.backupDir, bad, "storage-1", "random.bin"), "bitrot");
    const target = await newInstance();
    try {
      await expectRefusedOnEmpty(target, bad, {}, /backup 20010202_000000 is damaged: .*random\.bin: FAILED/);
    } finally {
      fs.rmSync(path.join(world.backupDir, bad), { recursive: true });
      await target.done();
    }
  });

  it("refuses a backup whose manifest counts other rows than it loads, leaving the empty instance as it was", async () => {
    // A manifest that says 5 users where the dump holds 4, with its checksums made to agree.
    const bad = "20010203_000000";
    const dir = path.join(world.backupDir, bad);
    await mustRun("cp", ["-a", path.join(world.backupDir, id), dir]);
    const tablesFile = path.join(dir, "meta", "tables.json");
    const tables = fs.readFileSync(tablesFile, "utf8");
    expect(tables).toMatch(/"public\.users_user" : 4\b/);
    fs.writeFileSync(tablesFile, tables.replace(/("public\.users_user" : )4\b/, "$15"));
    await resum(dir, ["meta/tables.json"]);
    const target = await newInstance();
    try {
      expect((await run(edmsBackup, ["verify", bad], { env: target.env })).code).toBe(0);
      await expectRefusedOnEmpty(target, bad, {}, /restored rows differ from the manifest \(public\.users_user: backup 5, restored 4\); database edms was not changed/);
    } finally {
      fs.rmSync(dir, { recursive: true });
      await target.done();
    }
  });

  it("counts the rows itself where the server keeps no statistics", async () => {
    const target = await newInstance();
    try {
      // Without statistics every table shows 0 rows loaded: each is counted instead, and matches.
      const result = await run(edmsBackup, ["restore", id, "--yes"], { env: { ...target.env, PGOPTIONS: "-c track_counts=off" } });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/public\.users_user +4 rows, as in the manifest/);
      expect(result.stdout).toMatch(/public\.audit_audittrail +1000 rows, as in the manifest/);
      expect(await target.cluster.psql("SELECT sum(n_tup_ins) FROM pg_stat_user_tables")).toBe("0\n");
      expect(await dbFingerprint(target.cluster.env, "edms")).toEqual(original.db);
    } finally {
      await target.done();
    }
  });

  it("takes no safety backup when the new instance's application has created its tables but no rows; one row or large object is data", async () => {
    const target = await newInstance();
    try {
      // What migrations leave: tables, a view, sequences; no rows.
      await target.cluster.psql("CREATE TABLE users_user (id serial PRIMARY KEY, username text); CREATE SCHEMA app; CREATE TABLE app.settings (k text); CREATE VIEW v AS SELECT 1 AS one;");
      const backups = listDir(world.backupDir);
      const migrated = await run(edmsBackup, ["restore", id, "--yes"], { env: target.env });
      expect(migrated.code, migrated.stderr).toBe(0);
      expect(migrated.stderr).toContain("the target holds no data (no table rows, no files): no safety backup needed");
      expect(migrated.stdout).toContain("Safety backup: none needed, the target held no data");
      expect(migrated.stdout).toMatch(/the previous database is kept as edms_prerestore_\d{8}_\d{6} /);
      expect(await dbFingerprint(target.cluster.env, "edms")).toEqual(original.db);
      expect(listDir(world.backupDir)).toEqual(backups);
    } finally {
      await target.done();
    }
    for (const data of ["CREATE TABLE app_setting (k text); INSERT INTO app_setting VALUES ('one row');", "SELECT lo_create(0);"]) {
      const holding = await newInstance();
      try {
        await holding.cluster.psql(data);
        const before = listDir(world.backupDir);
        const result = await run(edmsBackup, ["restore", id, "--yes"], { env: holding.env });
        expect(result.code, result.stderr).toBe(0);
        const safety = /Safety backup of the state before: (\d{8}_\d{6})/.exec(result.stdout)?.[1];
        expect(safety, data).toBeDefined();
        expect(listDir(world.backupDir)).toEqual([...before, safety!].sort());
        fs.rmSync(path.join(world.backupDir, safety!), { recursive: true });
      } finally {
        await holding.done();
      }
    }
  });

  it("gives index builds at most jobs - 1 parallel workers, never more than the server allows", async () => {
    // pg_restore records the session settings it is given, then does its work.
    const fake = fs.mkdtempSync(path.join(os.tmpdir(), "edms-fake-"));
    const seen = path.join(fake, "pgoptions");
    fs.writeFileSync(path.join(fake, "pg_restore"), `#!/usr/bin/env bash\n[[ "$1" == --version || "$1" == --list ]] || printf '%s\\n' "$PGOPTIONS" >>"${seen}"\nexec /usr/bin/pg_restore "$@"\n`, { mode: 0o755 });
    const workers = async (jobs: string, serverSetting?: string) => {
      const target = await newInstance();
      try {
        if (serverSetting) await target.cluster.psql(`ALTER ROLE edms SET max_parallel_maintenance_workers = ${serverSetting}`, "postgres");
        fs.rmSync(seen, { force: true });
        const result = await run(edmsBackup, ["restore", id, "--yes"], { env: { ...target.env, EDMS_BACKUP_JOBS: jobs, PATH: `${fake}:${process.env.PATH}` } });
        expect(result.code, result.stderr).toBe(0);
        return /max_parallel_maintenance_workers=(\d+)/.exec(fs.readFileSync(seen, "utf8"))?.[1];
      } finally {
        await target.done();
      }
    };
    try {
      expect(await workers("2")).toBe("1");
      expect(await workers("8")).toBe("2");
      expect(await workers("8", "0")).toBe("0");
      expect(await workers("1")).toBe("0");
    } finally {
      fs.rmSync(fake, { recursive: true, force: true });
    }
  });

  it("works when the database does not exist yet", async () => {
    const target = await newInstance();
    try {
      await target.cluster.psql("DROP DATABASE edms", "postgres");
      const result = await run(edmsBackup, ["restore", id, "--yes"], { env: { ...target.env, EDMS_BACKUP_RESTORE_TOAST_COMPRESSION: "pglz" } });
      expect(result.code).toBe(0);
      expect(await dbFingerprint(target.cluster.env, "edms")).toEqual(original.db);
      expect(await textCompression(target.cluster)).toBe("pglz");
    } finally {
      await target.done();
    }
  });
});

describe("the largest table, loaded in several streams at once", () => {
  // A table that holds most of the rows' bytes, whose names and values need every kind of
  // quoting and escaping, with a key, an index and a foreign key pointing at it.
  const bigTableSql = `CREATE SCHEMA "Audit ""Log""";
CREATE TABLE "Audit ""Log"""."Trail Entry" (id bigserial PRIMARY KEY, "Who? \u{1F464}" text, details jsonb, at timestamptz);
INSERT INTO "Audit ""Log"""."Trail Entry" ("Who? \u{1F464}", details, at)
  SELECT CASE g % 6 WHEN 0 THEN NULL WHEN 1 THEN E'tab\\there' WHEN 2 THEN E'new\\nline\\r\\n' WHEN 3 THEN E'back\\\\slash \\\\. \\\\N'
                    WHEN 4 THEN '' ELSE '\u00fcn\u00efc\u00f8d\u00e9 \u2713' END,
         jsonb_build_object('n', g, 'pad', repeat('x', 100 + g % 100)), '2026-01-01'::timestamptz + g * interval '1 second'
    FROM generate_series(1, 30000) g;
CREATE INDEX ON "Audit ""Log"""."Trail Entry" ("Who? \u{1F464}", at);
CREATE TABLE entry_ref (id int PRIMARY KEY, entry bigint REFERENCES "Audit ""Log"""."Trail Entry");
INSERT INTO entry_ref SELECT g, g * 7 FROM generate_series(1, 100) g;`;
  const streams = { EDMS_BACKUP_JOBS: "3", EDMS_BACKUP_RESTORE_SPLIT_BYTES: "1" };
  // The dump in gzip members (not pg_dump's one stream a file): what a restore loads in streams.
  const members = { EDMS_BACKUP_DB_MEMBERS: "1" };
  let source: World;
  let bigId: string;
  let bigOriginal: Awaited<ReturnType<typeof dbFingerprint>>;

  beforeAll(async () => {
    source = await makeWorld();
    await source.cluster.psql(bigTableSql);
    bigId = await source.backup(members);
    bigOriginal = await dbFingerprint(source.env, "edms");
  });
  afterAll(async () => {
    await source?.cleanup();
  });

  /** Restores a backup of the source onto a new instance, TABLE in 3 streams; the result is EXPECTED. */
  async function restoreInStreams(backupId: string, table: string, expected: typeof bigOriginal): Promise<void> {
    const target = await newInstance();
    try {
      const result = await run(edmsBackup, ["restore", backupId, "--yes"], { env: { ...target.env, ...streams, EDMS_BACKUP_DIR: source.backupDir } });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toContain(`loading ${table} in 3 streams at once, the rest with pg_restore`);
      expect(await dbFingerprint(target.cluster.env, "edms")).toEqual(expected);
    } finally {
      await target.done();
    }
  }

  it("restores it exactly, in as many streams as jobs, with its key, index and foreign key", async () => {
    expect(bigOriginal.tables['"Audit ""Log"""."Trail Entry"']).toMatch(/ 30000$/);
    await restoreInStreams(bigId, '"Audit ""Log"""."Trail Entry"', bigOriginal);
  });

  it("restores a table without keys or indexes, whose streams nothing waits for", async () => {
    await source.cluster.psql("CREATE DATABASE keyless", "postgres");
    await source.cluster.psql("CREATE TABLE log (line text); INSERT INTO log SELECT repeat(md5(g::text), 8) FROM generate_series(1, 200000) g; CREATE TABLE tiny (n int); INSERT INTO tiny VALUES (1);", "keyless");
    const keylessId = await source.backup({ PGDATABASE: "keyless", ...members });
    try {
      await restoreInStreams(keylessId, "public.log", await dbFingerprint({ ...source.env, PGDATABASE: "keyless" }, "keyless"));
    } finally {
      fs.rmSync(path.join(source.backupDir, keylessId), { recursive: true });
    }
  });

  it("keeps a table with a row longer than a member, and a large object, in one member each, which pg_restore loads alone", async () => {
    await source.cluster.psql("CREATE DATABASE longrow", "postgres");
    // The large object: 1.6 MB of binary (newlines anywhere), no COPY rows.
    await source.cluster.psql(`CREATE TABLE doc (n int, body text); INSERT INTO doc SELECT g, repeat(md5(g::text), 1000) FROM generate_series(1, 100) g; INSERT INTO doc VALUES (0, repeat(md5('long'), 100000));
      SELECT lo_from_bytea(0, (SELECT string_agg(sha256(g::text::bytea), ''::bytea) FROM generate_series(1, 50000) g));`, "longrow");
    const largeObjects = "SELECT string_agg(md5(lo_get(oid)), ',' ORDER BY oid) FROM pg_largeobject_metadata";
    const longId = await source.backup({ PGDATABASE: "longrow", ...members });
    try {
      const indexLines = fs.readFileSync(path.join(source.backupDir, longId, "meta", "dump-members"), "utf8").trim().split("\n").sort();
      expect(indexLines).toHaveLength(2);
      expect(indexLines[0]).toMatch(/^\d+\.dat\.gz 0 [0-9]{7} 0 \d+$/);
      expect(indexLines[1]).toMatch(/^blob_\d+\.dat\.gz 0 1600000 0 \d+$/);
      const target = await newInstance();
      try {
        const result = await run(edmsBackup, ["restore", longId, "--yes"], { env: { ...target.env, ...streams, EDMS_BACKUP_DIR: source.backupDir } });
        expect(result.code, result.stderr).toBe(0);
        expect(result.stderr).not.toContain("streams");
        expect(await dbFingerprint(target.cluster.env, "edms")).toEqual(await dbFingerprint({ ...source.env, PGDATABASE: "longrow" }, "longrow"));
        const restored = await target.cluster.psql(largeObjects);
        expect(restored).toMatch(/^[0-9a-f]{32}\n$/);
        expect(restored).toBe(await source.cluster.psql(largeObjects, "longrow"));
      } finally {
        await target.done();
      }
    } finally {
      fs.rmSync(path.join(source.backupDir, longId), { recursive: true });
    }
  });

  it("restores an uncompressed dump in streams too", async () => {
    const plainId = await source.backup({ EDMS_BACKUP_DB_COMPRESSION: "0" });
    try {
      expect(fs.readFileSync(path.join(source.backupDir, plainId, "manifest.txt"), "utf8")).toMatch(/directory format, uncompressed,/);
      expect(fs.readdirSync(path.join(source.backupDir, plainId, "db")).filter((name) => name.endsWith(".gz"))).toEqual([]);
      await restoreInStreams(plainId, '"Audit ""Log"""."Trail Entry"', bigOriginal);
    } finally {
      fs.rmSync(path.join(source.backupDir, plainId), { recursive: true });
    }
  });

  it("leaves to pg_restore alone a table under the size set, and a dump compressed in one piece", async () => {
    // The default: pg_dump compresses each data file in one gzip stream; no meta/dump-members.
    const defaultId = await source.backup();
    expect(fs.existsSync(path.join(source.backupDir, defaultId, "meta", "dump-members"))).toBe(false);
    expect(fs.readdirSync(path.join(source.backupDir, defaultId, "db")).filter((name) => name.endsWith(".dat.gz")).length).toBeGreaterThan(1);
    // A dump of an earlier version (pg_dump -Z1, before gzip members): the same, with an empty meta/dump-members.
    const compressedId = "20010203_000000";
    const dir = path.join(source.backupDir, compressedId);
    await mustRun("cp", ["-a", path.join(source.backupDir, bigId), dir]);
    const index = fs.readFileSync(path.join(dir, "meta", "dump-members"), "utf8");
    expect(index).toMatch(/\.dat\.gz 0 \d+ 0 \d+\n/);
    fs.rmSync(path.join(dir, "db"), { recursive: true });
    await mustRun("pg_dump", ["--format=directory", "--compress=1", "--no-owner", `--file=${path.join(dir, "db")}`], { env: source.env });
    fs.writeFileSync(path.join(dir, "meta", "dump-members"), "");
    const sums = (await mustRun("find", ["db", "meta/dump-members", "-type", "f", "-exec", "sha256sum", "{}", "+"], { cwd: dir })).trim().split("\n");
    fs.writeFileSync(path.join(dir, "SHA256SUMS"), fs.readFileSync(path.join(dir, "SHA256SUMS"), "utf8").split("\n")
      .filter((line) => line !== "" && !/  (db\/|meta\/dump-members$)/.test(line)).concat(sums).join("\n") + "\n");
    await resum(dir, []);
    expect(fs.readFileSync(path.join(source.backupDir, bigId, "manifest.txt"), "utf8")).toMatch(/directory format, gzip level 1,/);
    for (const [backupId, extra] of [[bigId, { EDMS_BACKUP_JOBS: "3" }], [compressedId, streams], [defaultId, streams]] as const) {
      const target = await newInstance();
      try {
        const result = await run(edmsBackup, ["restore", backupId, "--yes"], { env: { ...target.env, ...extra, EDMS_BACKUP_DIR: source.backupDir } });
        expect(result.code, result.stderr).toBe(0);
        expect(result.stderr).not.toContain("streams");
        expect(await dbFingerprint(target.cluster.env, "edms")).toEqual(bigOriginal);
      } finally {
        await target.done();
      }
    }
    fs.rmSync(path.join(source.backupDir, compressedId), { recursive: true });
    fs.rmSync(path.join(source.backupDir, defaultId), { recursive: true });
  });

  it("refuses a row that does not load in one stream, leaving the empty instance as it was", async () => {
    // One row three quarters into the table's data file made invalid, its checksums made to
    // agree.
    const bad = "20010204_000000";
    const dir = path.join(source.backupDir, bad);
    fs.renameSync(path.join(source.backupDir, await source.backup({ EDMS_BACKUP_DB_COMPRESSION: "0" })), dir);
    const dataFiles = fs.readdirSync(path.join(dir, "db")).filter((name) => /^\d+\.dat$/.test(name));
    const largest = dataFiles.sort((a, b) => fs.statSync(path.join(dir, "db", b)).size - fs.statSync(path.join(dir, "db", a)).size)[0];
    const file = path.join(dir, "db", largest);
    const data = fs.readFileSync(file, "latin1");
    const row = data.indexOf("\n", Math.floor(data.length * 0.75)) + 1;
    fs.writeFileSync(file, `${data.slice(0, row)}x${data.slice(data.indexOf("\t", row))}`, "latin1");
    await resum(dir, [`db/${largest}`]);
    const target = await newInstance();
    try {
      const stderr = await expectRefusedOnEmpty(target, bad, { ...streams, EDMS_BACKUP_DIR: source.backupDir },
        /loading the database failed: ERROR: +invalid input syntax for type bigint: "x".*; database edms was not changed/);
      expect(stderr).toContain("in 3 streams at once");
    } finally {
      fs.rmSync(dir, { recursive: true });
      await target.done();
    }
  });
});

describe("restore in place over damaged data", () => {
  it("replaces everything exactly while a client is connected, keeps a safety backup and the old database", async () => {
    await world.cluster.psql("DELETE FROM audit_audittrail WHERE id > 10; UPDATE users_user SET password = 'broken'; DROP TABLE django_session; CREATE TABLE junk (x int);");
    changeStorageTree(world.storage[0], "damage");
    fs.writeFileSync(path.join(world.storage[1], "extraneous.tmp"), "should go");
    fs.rmSync(path.join(world.storage[1], "documents"), { recursive: true });
    const damaged = { db: await dbFingerprint(world.env, "edms"), storage: world.storage.map(snapshotTree) };

    // A client that stays connected, idle in a transaction, as an application would.
    const client = spawn("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1"], { env: { ...process.env, ...world.env }, stdio: ["pipe", "pipe", "pipe"] });
    client.stdin.write("BEGIN; SELECT count(*) FROM users_user;\n");
    await new Promise((r) => setTimeout(r, 500));

    const result = await world.edms(["restore", id, "--yes"]);
    expect(result.code).toBe(0);
    expect(await dbFingerprint(world.env, "edms")).toEqual(original.db);
    world.storage.forEach((dir, i) => expect(snapshotTree(dir)).toEqual(original.storage[i]));
    expect(listDir(world.storage[0]).filter((n) => n.startsWith(".edms-restore"))).toEqual([]);
    client.stdin.end();

    const safety = /Safety backup of the state before: (\d{8}_\d{6})/.exec(result.stdout)?.[1];
    expect(safety).toBeDefined();
    expect((await world.edms(["list"])).stdout).toMatch(new RegExp(`^${safety} .*pre-restore`, "m"));
    const kept = /kept as (edms_prerestore_\d{8}_\d{6})/.exec(result.stdout)?.[1];
    expect(kept).toBeDefined();
    expect(await dbFingerprint(world.env, kept!)).toEqual(damaged.db);

    // The safety backup undoes the restore.
    const undo = await world.edms(["restore", safety!, "--yes"]);
    expect(undo.code).toBe(0);
    expect(await dbFingerprint(world.env, "edms")).toEqual(damaged.db);
    world.storage.forEach((dir, i) => expect(snapshotTree(dir)).toEqual(damaged.storage[i]));
    // And back again, for the tests after this one.
    expect((await world.edms(["restore", id, "--yes"])).code).toBe(0);
    world.storage.forEach((dir, i) => expect(snapshotTree(dir)).toEqual(original.storage[i]));
  });

  it("keeps both previous databases when two restores replace it within one second", async () => {
    // The names of the seconds this restore may start in are taken already, as by a restore just before.
    const stamp = (s: number) => new Date(Date.now() + s * 1000).toISOString().replace(/[-:]/g, "").replace("T", "_").slice(0, 15);
    const existing = (await world.cluster.psql("SELECT string_agg(datname, ',') FROM pg_database", "postgres")).trim().split(",");
    const taken = Array.from({ length: 30 }, (_, i) => `edms_prerestore_${stamp(i - 1)}`).filter((name) => !existing.includes(name));
    for (const name of taken) await world.cluster.psql(`CREATE DATABASE "${name}"`, "postgres");
    const result = await world.edms(["restore", id, "--yes"]);
    for (const name of taken) await world.cluster.psql(`DROP DATABASE "${name}"`, "postgres");
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/the previous database is kept as edms_prerestore_\d{8}_\d{6}_2 /);
    const kept = await world.cluster.psql("SELECT count(*) FROM pg_database WHERE datname ~ '^edms_prerestore_[0-9]{8}_[0-9]{6}_2$'", "postgres");
    expect(Number(kept)).toBe(1);
  });
});

describe("a refused restore changes nothing", () => {
  async function unchanged(action: () => Promise<{ code: number; stderr: string; stdout: string }>, message: RegExp) {
    const before = { db: await dbFingerprint(world.env, "edms"), storage: world.storage.map(snapshotTree), backups: listDir(world.backupDir) };
    const dbs = await world.cluster.psql("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database", "postgres");
    const result = await action();
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(message);
    expect(await dbFingerprint(world.env, "edms")).toEqual(before.db);
    world.storage.forEach((dir, i) => expect(snapshotTree(dir)).toEqual(before.storage[i]));
    expect(listDir(world.backupDir).filter((n) => !n.startsWith("."))).toEqual(before.backups.filter((n) => !n.startsWith(".")));
    expect(await world.cluster.psql("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database", "postgres")).toBe(dbs);
    return result;
  }

  it("without --yes", async () => {
    await unchanged(() => world.edms(["restore", id]), /refusing to restore without --yes/);
  });

  it("without an id: lists the backups", async () => {
    const result = await unchanged(() => world.edms(["restore", "--yes"]), /which backup\?/);
    expect(result.stdout).toContain(id);
  });

  it("of a corrupted backup, naming the problem", async () => {
    const bad = "20010101_000000";
    await mustRun("cp", ["-a", path.join(world.backupDir, id), path.join(world.backupDir, bad)]);
    fs.appendFileSync(path.join(world.backupDir, bad, "storage-2", "random.bin"), "bitrot");
    try {
      await unchanged(() => world.edms(["restore", bad, "--yes"]), /backup 20010101_000000 is damaged: .*random\.bin: FAILED/);
    } finally {
      fs.rmSync(path.join(world.backupDir, bad), { recursive: true });
    }
  });

  // Issue 32, finding 5: the manifest read by key, whatever its spacing (it was grepped for
  // '"serverVersionNum": ' and read as 0 otherwise, which let any pg_restore pass).
  it("from a server newer than its pg_restore, also when a JSON tool rewrote the manifest compactly", async () => {
    const newer = "20010102_000000";
    await mustRun("cp", ["-a", path.join(world.backupDir, id), path.join(world.backupDir, newer)]);
    const manifest = path.join(world.backupDir, newer, "manifest.json");
    const json = JSON.parse(fs.readFileSync(manifest, "utf8"));
    json.database.serverVersionNum = 990000;
    fs.writeFileSync(manifest, JSON.stringify(json));
    try {
      await unchanged(() => world.edms(["restore", newer, "--yes"]), /pg_restore 15 is older than the PostgreSQL 99 the backup was taken from: use the image postgres:99-bookworm or newer/);
    } finally {
      fs.rmSync(path.join(world.backupDir, newer), { recursive: true });
    }
  });

  it("when the storage folders do not match the backup's, or one is /", async () => {
    await unchanged(() => world.edms(["restore", id, "--yes"], { env: { EDMS_BACKUP_STORAGE_DIRS: world.storage[0] } }), /holds 2 storage folder\(s\) but EDMS_BACKUP_STORAGE_DIRS names 1/);
    await unchanged(() => world.edms(["restore", id, "--yes"], { env: { EDMS_BACKUP_STORAGE_DIRS: `${world.storage[0]}:/` } }), /storage folder \/ is \/ \(EDMS_BACKUP_STORAGE_DIRS item 2\): name the storage folder itself/);
  });

  it("with an unknown TOAST compression method", async () => {
    await unchanged(
      () => world.edms(["restore", id, "--yes"], { env: { EDMS_BACKUP_RESTORE_TOAST_COMPRESSION: "zstd" } }),
      /EDMS_BACKUP_RESTORE_TOAST_COMPRESSION='zstd' is neither lz4 nor pglz/,
    );
  });

  it("when ENCRYPTION_KEY differs, naming it", async () => {
    await unchanged(
      () => world.edms(["restore", id, "--yes"], { env: { ...secrets, EDMS_SECRET_ENCRYPTION_KEY: "another key" } }),
      /secret ENCRYPTION_KEY differs from the one backup \d{8}_\d{6} was taken with: files and fields encrypted with the old key will not decrypt/,
    );
  });
});

describe("secrets on restore", () => {
  it("a different SECRET_KEY proceeds and says users must log in again; an allowed ENCRYPTION_KEY mismatch proceeds", async () => {
    const different = await world.edms(["restore", id, "--yes"], { env: { ...secrets, EDMS_SECRET_SECRET_KEY: "new-secret" } });
    expect(different.code, different.stderr).toBe(0);
    expect(different.stderr).toMatch(/secret SECRET_KEY differs from the backup's: sessions, CSRF tokens and tokens signed with it become invalid, so users must log in again; their passwords still work/);
    expect(different.stderr).not.toMatch(/ENCRYPTION_KEY differs/);
    const allowed = await world.edms(["restore", id, "--yes"], {
      env: { ...secrets, EDMS_SECRET_ENCRYPTION_KEY: "another key", EDMS_BACKUP_ALLOW_SECRET_MISMATCH: "ENCRYPTION_KEY" },
    });
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stderr).toMatch(/secret ENCRYPTION_KEY differs from the backup's: files and fields encrypted/);
  });

  it("writes the application's env file from the secrets, mode 0600", async () => {
    const result = await world.edms(["restore", id, "--yes"], {
      env: { ...secrets, EDMS_SECRET_JWT_SECRET_KEY: 'with "quotes" and $dollar', EDMS_BACKUP_APP_ENV_FILE: "/srv/edms/app.env" },
    });
    expect(result.code, result.stderr).toBe(0);
    const file = path.join(world.configRoot, "srv/edms/app.env");
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file, "utf8")).toBe(
      'ENCRYPTION_KEY=enc-key-1\nJWT_SECRET_KEY="with \\"quotes\\" and \\$dollar"\nSECRET_KEY=django-secret-1\n',
    );
    const leaked = await run("grep", ["-r", "-a", "-l", "django-secret-1", world.backupDir]);
    expect(leaked.stdout).toBe("");
    expect(result.stdout + result.stderr).not.toContain("django-secret-1");
  });
});

describe("an interrupted restore", () => {
  it("leaves the old database when killed while restoring, and running it again finishes the job", async () => {
    await world.cluster.psql("UPDATE users_user SET email = 'changed@example.org' WHERE id = 1");
    const changed = await dbFingerprint(world.env, "edms");
    const fake = fs.mkdtempSync(path.join(os.tmpdir(), "edms-fake-"));
    fs.writeFileSync(path.join(fake, "pg_restore"), '#!/usr/bin/env bash\n[[ "$1" == --version || "$1" == --list ]] || sleep 5\nexec /usr/bin/pg_restore "$@"\n', { mode: 0o755 });
    const env = { ...(process.env as Record<string, string>), ...world.env, PATH: `${fake}:${process.env.PATH}` };
    const child = spawn(edmsBackup, ["restore", id, "--yes"], { env, detached: true, stdio: "ignore" });
    for (let i = 0; i < 100; i++) {
      const staging = await world.cluster.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'edms\\_restoring\\_%'", "postgres");
      if (Number(staging) > 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    process.kill(-child.pid!, "SIGKILL");
    await new Promise((r) => child.on("close", r));
    expect(await dbFingerprint(world.env, "edms")).toEqual(changed);

    const again = await world.edms(["restore", id, "--yes"]);
    expect(again.code).toBe(0);
    expect(await dbFingerprint(world.env, "edms")).toEqual(original.db);
    const leftovers = await world.cluster.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'edms\\_restoring\\_%'", "postgres");
    expect(Number(leftovers)).toBe(0);
    fs.rmSync(fake, { recursive: true });
  });

  it("finishes a storage swap that was cut off half way", async () => {
    // The state a kill leaves in the middle of swap_folder: half the old entries moved aside.
    const target = world.storage[1];
    const copy = (from: string, to: string) => mustRun("cp", ["-a", `${from}/.`, `${to}/`]);
    fs.mkdirSync(path.join(target, ".edms-restore-ready"));
    await copy(path.join(world.backupDir, id, "storage-2"), path.join(target, ".edms-restore-ready"));
    fs.mkdirSync(path.join(target, ".edms-restore-old"));
    fs.renameSync(path.join(target, "random.bin"), path.join(target, ".edms-restore-old", "random.bin"));
    fs.writeFileSync(path.join(target, "junk-from-before"), "x");
    // What the stopped restore recorded before it staged into the folder (lib/made.sh).
    fs.appendFileSync(path.join(world.backupDir, ".made"), `folder:stage\t-\t-\t${pathHash(fs.realpathSync(target))}\n`);
    const result = await world.edms(["restore", id, "--yes"]);
    expect(result.stderr).toContain("finishing the storage swap");
    expect(result.code).toBe(0);
    world.storage.forEach((dir, i) => expect(snapshotTree(dir)).toEqual(original.storage[i]));
  });
});

describe("what the database carries besides its tables", () => {
  let source: World;
  let backupId: string;
  const state = `SELECT coalesce((SELECT string_agg(coalesce(r.rolname, '-') || ':' || c, ',' ORDER BY r.rolname NULLS FIRST, c)
      FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole, unnest(s.setconfig) c WHERE s.setdatabase = d.oid), '')
    || ' | ' || coalesce(shobj_description(d.oid, 'pg_database'), '') || ' | ' || coalesce(d.datacl::text, '') || ' | ' || d.datconnlimit
    FROM pg_database d WHERE datname = 'edms'`;
  let sourceState: string;

  beforeAll(async () => {
    source = await makeWorld();
    await source.cluster.psql(`CREATE ROLE reader LOGIN PASSWORD 'reader pw'; CREATE ROLE auditors NOLOGIN; GRANT auditors TO reader;
      ALTER DATABASE edms SET work_mem = '7MB'; ALTER DATABASE edms SET search_path = 'a, b', public; ALTER DATABASE edms CONNECTION LIMIT 50;
      ALTER ROLE reader IN DATABASE edms SET statement_timeout = '5s'; COMMENT ON DATABASE edms IS 'the EDMS''s "main" database';
      REVOKE ALL ON DATABASE edms FROM PUBLIC; GRANT CONNECT, TEMP ON DATABASE edms TO reader; GRANT CONNECT ON DATABASE edms TO auditors WITH GRANT OPTION;`, "postgres");
    await source.cluster.psql("GRANT SELECT ON users_user TO reader; GRANT SELECT, UPDATE ON documents_document TO auditors; ALTER TABLE documents_document ENABLE ROW LEVEL SECURITY; CREATE POLICY readable ON documents_document TO auditors USING (true);");
    sourceState = await source.cluster.psql(state, "postgres");
    backupId = await source.backup();
  });
  afterAll(async () => {
    await source?.cleanup();
  });

  it("records the database's settings, comment, grants and the roles it references", () => {
    const meta = path.join(source.backupDir, backupId, "meta");
    const db = JSON.parse(fs.readFileSync(path.join(meta, "database.json"), "utf8"));
    expect(db.comment).toBe(`the EDMS's "main" database`);
    expect(db.connlimit).toBe(50);
    expect(db.settings).toContainEqual({ role: "reader", name: "statement_timeout", value: "5s" });
    const roles = JSON.parse(fs.readFileSync(path.join(meta, "roles.json"), "utf8"));
    expect(roles.map((r: { name: string }) => r.name)).toEqual(["auditors", "edms", "reader"]);
    const reader = roles.find((r: { name: string }) => r.name === "reader");
    expect(reader.create).toMatch(/^CREATE ROLE reader WITH .*LOGIN.* PASSWORD 'SCRAM-SHA-256\$/);
    expect(reader.memberOf).toEqual(["auditors"]);
    expect(roles.find((r: { name: string }) => r.name === "edms").create).toBe("CREATE ROLE edms NOLOGIN");
  });

  it("onto a new instance: creates the missing roles, keeps grants and policies, takes the backup's database state", async () => {
    const target = await newInstance();
    try {
      // Every psql's command line logged (issue 32: no secret on a command line, which ps shows).
      const bin = fs.mkdtempSync(path.join(source.root, "argv-"));
      const argv = path.join(bin, "argv.log");
      fs.writeFileSync(path.join(bin, "psql"), `#!/bin/sh\nprintf '%s\\n' "$*" >>"${argv}"\nexec /usr/lib/postgresql/15/bin/psql "$@"\n`, { mode: 0o755 });
      const result = await run(edmsBackup, ["restore", backupId, "--yes"], { env: { ...target.env, EDMS_BACKUP_DIR: source.backupDir, PATH: `${bin}:${process.env.PATH}` } });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toContain("created role(s) the backup's database references: auditors, reader");
      expect(fs.readFileSync(path.join(source.backupDir, backupId, "meta", "roles.json"), "utf8")).toContain("SCRAM-SHA-256$");
      const lines = fs.readFileSync(argv, "utf8");
      expect(lines).toContain("-v");
      expect(lines).not.toMatch(/SCRAM-SHA-256|PASSWORD/);
      expect(await target.cluster.psql(state, "postgres")).toBe(sourceState);
      expect(await target.cluster.psql("SELECT has_table_privilege('reader', 'users_user', 'SELECT') || ' ' || has_table_privilege('auditors', 'documents_document', 'UPDATE') || ' ' || pg_has_role('reader', 'auditors', 'MEMBER')")).toBe("true true true\n");
      expect(await target.cluster.psql("SELECT count(*) FROM pg_policy WHERE polname = 'readable'")).toBe("1\n");
      // The reader logs in with its password, as on the old server.
      const login = await run("psql", ["-X", "-A", "-t", "-c", "SELECT current_setting('statement_timeout') || ' ' || current_setting('work_mem')"], { env: { ...target.cluster.env, PGUSER: "reader", PGPASSWORD: "reader pw" } });
      expect(login.stdout).toBe("5s 7MB\n");
    } finally {
      await target.done();
    }
  });

  it("in place: the target's own database state wins over the backup's", async () => {
    await source.cluster.psql("ALTER DATABASE edms SET work_mem = '9MB'; COMMENT ON DATABASE edms IS 'changed since'; GRANT TEMP ON DATABASE edms TO auditors", "postgres");
    const now = await source.cluster.psql(state, "postgres");
    const result = await source.edms(["restore", backupId, "--yes"]);
    expect(result.code, result.stderr).toBe(0);
    expect(await source.cluster.psql(state, "postgres")).toBe(now);
    expect(await source.cluster.psql("SELECT has_table_privilege('reader', 'users_user', 'SELECT')")).toBe("t\n");
  });

  it("refuses before anything changes when PGUSER may not create the missing roles, naming them and the statement", async () => {
    const target = await newInstance();
    try {
      await target.cluster.psql("CREATE ROLE owner LOGIN CREATEDB PASSWORD 'owner pw'; ALTER DATABASE edms OWNER TO owner; GRANT ALL ON SCHEMA public TO owner", "postgres");
      const env = { ...target.env, EDMS_BACKUP_DIR: source.backupDir, PGUSER: "owner", PGPASSWORD: "owner pw" };
      const result = await run(edmsBackup, ["restore", backupId, "--yes"], { env });
      expect(result.code).not.toBe(0);
      expect(result.stderr.trim().split("\n").pop()).toMatch(/references role\(s\) this server lacks: auditors, reader; PGUSER may not create roles: create them as a superuser \(CREATE ROLE auditors WITH .*; CREATE ROLE reader WITH .*\) and run the restore again; nothing was changed/);
      expect(result.stderr).not.toContain("SCRAM-SHA-256$"); // the message reaches logs and notifications
      expect(await target.cluster.psql("SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database", "postgres")).toBe("edms,postgres,template0,template1\n");
    } finally {
      await target.done();
    }
  });
});

/** The runtime's path_hash: the first 16 hex digits of the path's SHA-256. */
function pathHash(p: string): string {
  return createHash("sha256").update(p).digest("hex").slice(0, 16);
}
