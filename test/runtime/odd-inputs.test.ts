import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { edmsBackup, lastLine, mustRun, run, type RunResult } from "../support/run";
import { listDir, makeWorld, type World } from "../support/world";

// Odd files, names, settings and faults: each gives a correct backup and restore, or one
// line naming the cause with older backups intact. Each case has a backup folder of its own.

let world: World;
let caseNo = 0;
const pgBin = "/usr/lib/postgresql/15/bin";

beforeAll(async () => {
  world = await makeWorld();
});
afterAll(async () => {
  await world?.cleanup();
});

/** A fresh backup folder and a storage folder (as bytes: names need not be UTF-8). */
function fresh(storageName: Buffer | string = "storage"): { env: Record<string, string>; backups: string; storage: Buffer } {
  const base = path.join(world.root, `case-${++caseNo}`);
  fs.mkdirSync(base);
  const storage = Buffer.concat([Buffer.from(base + "/"), Buffer.from(storageName)]);
  fs.mkdirSync(storage);
  fs.writeFileSync(Buffer.concat([storage, Buffer.from("/a.pdf")]), "a\n");
  const backups = path.join(base, "backups");
  return { env: { EDMS_BACKUP_DIR: backups, EDMS_BACKUP_STORAGE_DIRS: storage.toString("latin1"), EDMS_BACKUP_CONFIG_PATHS: "" }, backups, storage };
}

/** Everything below DIR (names, types, sizes, modes, owners, mtimes, link targets, contents), as one digest. */
async function treeDigest(dir: Buffer): Promise<string> {
  const script = `cd -- "$1" && { find . -mindepth 1 -printf '%P\\0%y %s %m %U %G %T@ %l\\0' | sort -z | sha256sum; find . -type f -print0 | sort -z | xargs -0 -r sha256sum | sha256sum; }`;
  return mustRun("bash", ["-c", script, "_", dir.toString()], { env: { LC_ALL: "C" } });
}

/** Only the runtime's own lines (a say or die), no raw tool output. */
function ownLines(result: RunResult): void {
  expect(result.stderr.split("\n").filter((l) => l && !l.startsWith("edms-backup ")), result.stderr).toEqual([]);
}

async function backupOk(env: Record<string, string>): Promise<string> {
  const result = await world.edms(["backup"], { env });
  expect(result.code, result.stderr).toBe(0);
  ownLines(result);
  const id = lastLine(result.stdout);
  const verify = await world.edms(["verify", id], { env });
  expect(verify.code, verify.stderr).toBe(0);
  return id;
}

/** Refused with one line matching CAUSE, nothing written where the backups go. */
async function refused(env: Record<string, string>, cause: RegExp, args = ["backup"]): Promise<void> {
  const result = await world.edms(args, { env });
  expect(result.code).not.toBe(0);
  expect(result.stderr.trim().split("\n")).toEqual([expect.stringMatching(cause)]);
}

function manifest(backups: string, id: string): { storage: { source: string; files: number; skippedSockets: number; tornFiles: number; torn: string[] }[]; database: { tables: Record<string, number> } } {
  return JSON.parse(fs.readFileSync(path.join(backups, id, "manifest.json"), "utf8"));
}

describe("odd files and names: a correct backup and restore", () => {
  it("a file name that is not UTF-8, under a UTF-8 locale", async () => {
    const c = fresh();
    const env = { ...c.env, LANG: "C.UTF-8", LC_ALL: "C.UTF-8" };
    fs.writeFileSync(Buffer.concat([c.storage, Buffer.from("/caf"), Buffer.from([0xe9]), Buffer.from(".pdf")]), "latin-1 name\n");
    fs.mkdirSync(Buffer.concat([c.storage, Buffer.from("/d"), Buffer.from([0xff])]));
    fs.writeFileSync(Buffer.concat([c.storage, Buffer.from("/d"), Buffer.from([0xff, 0x2f, 0x78])]), "x\n");
    const before = await treeDigest(c.storage);
    const id = await backupOk(env);
    fs.rmSync(Buffer.concat([c.storage, Buffer.from("/caf"), Buffer.from([0xe9]), Buffer.from(".pdf")]));
    const restore = await world.edms(["restore", id, "--yes"], { env });
    expect(restore.code, restore.stderr).toBe(0);
    expect(await treeDigest(c.storage)).toBe(before);
  });

  it("a storage folder that is a symlink to the real one", async () => {
    const c = fresh("real");
    const link = path.join(path.dirname(c.storage.toString()), "storage");
    fs.symlinkSync(c.storage.toString(), link);
    const env = { ...c.env, EDMS_BACKUP_STORAGE_DIRS: link };
    const before = await treeDigest(c.storage);
    const id = await backupOk(env);
    expect(manifest(c.backups, id).storage[0].source).toBe(link);
    fs.writeFileSync(path.join(link, "a.pdf"), "changed\n");
    const restore = await world.edms(["restore", id, "--yes"], { env });
    expect(restore.code, restore.stderr).toBe(0);
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(await treeDigest(c.storage)).toBe(before);
  });

  it("a unix socket in a storage folder is skipped and said so", async () => {
    const c = fresh();
    const socketPath = path.join(c.storage.toString(), "app.sock");
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(socketPath, r));
    try {
      const result = await world.edms(["backup"], { env: c.env });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toMatch(/skipped 1 socket\(s\)/);
      const id = lastLine(result.stdout);
      expect((await world.edms(["verify", id], { env: c.env })).code).toBe(0);
      expect(manifest(c.backups, id).storage[0].skippedSockets).toBe(1);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it("a newline in a storage folder's path: that folder, not a cut path", async () => {
    const c = fresh("docs\nnew");
    fs.mkdirSync(path.join(path.dirname(c.storage.toString()), "docs"));
    fs.writeFileSync(path.join(path.dirname(c.storage.toString()), "docs", "wrong.pdf"), "the cut path\n");
    const before = await treeDigest(c.storage);
    const id = await backupOk(c.env);
    expect(manifest(c.backups, id).storage[0].source).toBe(c.storage.toString());
    expect(fs.readdirSync(path.join(c.backups, id, "storage-1"))).toEqual(["a.pdf"]);
    fs.rmSync(path.join(c.storage.toString(), "a.pdf"));
    const restore = await world.edms(["restore", id, "--yes"], { env: c.env });
    expect(restore.code, restore.stderr).toBe(0);
    expect(await treeDigest(c.storage)).toBe(before);
  });

  it("a storage path that is not UTF-8: manifest.json stays valid JSON and names it (\\udcXX for each stray byte)", async () => {
    const c = fresh(Buffer.from([0x73, 0x74, 0xf6, 0x72, 0x65]));
    // Node passes environment values as UTF-8: bash puts the stray byte in.
    const base = path.dirname(c.storage.toString("latin1"));
    const result = await run("bash", ["-c", `EDMS_BACKUP_STORAGE_DIRS="$1/st$(printf '\\366')re" exec "$0" backup`, edmsBackup, base], { env: { ...world.env, ...c.env } });
    expect(result.code, result.stderr).toBe(0);
    ownLines(result);
    const id = lastLine(result.stdout);
    expect((await world.edms(["verify", id], { env: c.env })).code).toBe(0);
    expect(manifest(c.backups, id).storage[0].source).toBe(`${base}/st\udcf6re`);
  });

  it("a relative storage path starting with '-'", async () => {
    const c = fresh("-docs");
    const before = await treeDigest(c.storage);
    const env = { ...c.env, EDMS_BACKUP_STORAGE_DIRS: "-docs" };
    const cwd = path.dirname(c.storage.toString());
    const result = await world.edms(["backup"], { env, cwd });
    expect(result.code, result.stderr).toBe(0);
    const id = lastLine(result.stdout);
    expect((await world.edms(["verify", id], { env, cwd })).code).toBe(0);
    expect(await treeDigest(Buffer.from(path.join(c.backups, id, "storage-1")))).toBe(before);
  });

  it("what a stopped restore staged in a storage folder is not backed up", async () => {
    const c = fresh();
    const stage = path.join(c.storage.toString(), ".edms-restore-stage");
    fs.mkdirSync(stage);
    for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(stage, `half-${i}.pdf`), "half\n");
    const id = await backupOk(c.env);
    expect(fs.readdirSync(path.join(c.backups, id, "storage-1"))).toEqual(["a.pdf"]);
  });
});

describe("odd databases: a correct backup and restore", () => {
  it('two tables whose names joined with a dot are the same ("x.y".z and x."y.z") keep their own row counts', async () => {
    const c = fresh();
    await world.cluster.psql(`CREATE SCHEMA "x.y"; CREATE TABLE "x.y".z (i int); INSERT INTO "x.y".z SELECT generate_series(1, 3);
      CREATE SCHEMA x; CREATE TABLE x."y.z" (i int); INSERT INTO x."y.z" SELECT generate_series(1, 5);`);
    try {
      const id = await backupOk(c.env);
      const tables = manifest(c.backups, id).database.tables;
      expect(tables['"x.y".z']).toBe(3);
      expect(tables['x."y.z"']).toBe(5);
      const restore = await world.edms(["restore", id, "--yes"], { env: c.env });
      expect(restore.code, restore.stderr).toBe(0);
      expect(await world.cluster.psql(`SELECT (SELECT count(*) FROM "x.y".z) || ' ' || (SELECT count(*) FROM x."y.z")`)).toBe("3 5\n");
    } finally {
      await world.cluster.psql(`DROP SCHEMA "x.y" CASCADE; DROP SCHEMA x CASCADE;`);
    }
  });

  it("a database whose name holds '=' (and a quote)", async () => {
    const c = fresh();
    const name = "e=d'b";
    const conninfo = "dbname='e=d\\'b'"; // psql -d takes a name with "=" for a connection string
    await world.cluster.psql(`CREATE DATABASE "${name}"`, "postgres");
    await world.cluster.psql("CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 7);", conninfo);
    const env = { ...c.env, PGDATABASE: name };
    const id = await backupOk(env);
    await world.cluster.psql("DELETE FROM t", conninfo);
    const restore = await world.edms(["restore", id, "--yes"], { env });
    expect(restore.code, restore.stderr).toBe(0);
    expect(await world.cluster.psql("SELECT count(*) FROM t", conninfo)).toBe("7\n");
  });
});

describe("a file written while it is copied", () => {
  it("is recorded as torn in the manifest and named by verify and status", async () => {
    const c = fresh();
    const growing = path.join(c.storage.toString(), "growing.log");
    fs.writeFileSync(growing, "x".repeat(1 << 20));
    const writer = spawn("bash", ["-c", 'while :; do printf "%s\\n" line >>"$1"; done', "_", growing], { stdio: "ignore" });
    let result: RunResult;
    try {
      await new Promise((r) => setTimeout(r, 200));
      result = await world.edms(["backup"], { env: c.env });
    } finally {
      writer.kill("SIGKILL");
    }
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/1 file\(s\) in .* changed while being copied: their copies may be torn/);
    const id = lastLine(result.stdout);
    const storage = manifest(c.backups, id).storage[0];
    expect([storage.tornFiles, storage.torn]).toEqual([1, ["growing.log"]]);
    expect(fs.readFileSync(path.join(c.backups, id, "manifest.txt"), "utf8")).toMatch(/1 files written while copied, may be torn/);
    const verify = await world.edms(["verify", id], { env: c.env });
    expect(verify.code).toBe(0);
    expect(verify.stderr).toMatch(/holds 1 file\(s\) written while it copied them, recorded as torn .*storage-1\/growing\.log/);
    const status = await world.edms(["status"], { env: c.env });
    expect(status.stdout).toMatch(/last success: .*1 files written while copied, recorded as torn/);
    // The next backup, with nobody writing, takes it whole.
    const next = await backupOk(c.env);
    expect(manifest(c.backups, next).storage[0].tornFiles).toBe(0);
  });
});

describe("files removed while the folder is backed up", () => {
  it("are not in the backup, and the backup succeeds and verifies, every time", async () => {
    // A program that makes and removes files all the time: some are indexed, then gone before
    // they are copied (tar: "Cannot stat"), or gone while the folder is read (find).
    const c = fresh();
    const stable = path.join(c.storage.toString(), "documents");
    fs.mkdirSync(stable);
    for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(stable, `doc-${i}.pdf`), `document ${i}\n`);
    const scratch = path.join(c.storage.toString(), "scratch");
    fs.mkdirSync(scratch);
    const churn = spawn("bash", ["-c", 'cd "$1" && while :; do for i in {1..200}; do : >"f$i"; done; rm -f f*; done', "_", scratch], { stdio: "ignore" });
    const ids: string[] = [];
    try {
      await new Promise((r) => setTimeout(r, 200));
      for (let n = 0; n < 2; n++) ids.push(await backupOk(c.env));
    } finally {
      churn.kill("SIGKILL");
    }
    for (const id of ids) {
      const copy = path.join(c.backups, id, "storage-1");
      expect(fs.readdirSync(path.join(copy, "documents")).length).toBe(300);
      // What the manifest counts is what the copy holds.
      const files = (await mustRun("find", [copy, "-type", "f", "-printf", "."])).length;
      expect(manifest(c.backups, id).storage[0].files).toBe(files);
    }
  });
});

describe("settings that cannot work are refused up front, with one line", () => {
  it("a backup folder inside a storage folder (backups would nest), before anything is made", async () => {
    const c = fresh();
    const inside = path.join(c.storage.toString(), "backups");
    await refused({ ...c.env, EDMS_BACKUP_DIR: inside }, /storage folder .* and the backup folder .* lie one inside the other: keep backups outside the storage/);
    expect(fs.existsSync(inside)).toBe(false);
  });

  it("the same storage folder named twice, at backup time", async () => {
    const c = fresh();
    const dir = c.storage.toString();
    await refused({ ...c.env, EDMS_BACKUP_STORAGE_DIRS: `${dir}:${dir}/` }, /storage folder .* is named twice in EDMS_BACKUP_STORAGE_DIRS/);
    fs.mkdirSync(path.join(dir, "sub"));
    await refused({ ...c.env, EDMS_BACKUP_STORAGE_DIRS: `${dir}:${dir}/sub` }, /storage folders .* lie one inside the other: name only the outer one/);
    expect(listDir(c.backups).filter((n) => /^\d{8}_\d{6}$/.test(n))).toEqual([]);
  });

  it("a time zone that does not exist, for the schedule and for status", async () => {
    const c = fresh();
    for (const TZ of ["Invalid/Zone", "UTC+3x"]) {
      for (const command of ["schedule", "status"]) {
        await refused({ ...c.env, TZ }, new RegExp(`TZ='${TZ.replace("+", "\\+")}' is not a time zone .* set it to one such as UTC or Europe/Berlin`), [command]);
      }
    }
  });

  it("a schedule that never fires (31 February), for the schedule and for status", async () => {
    const c = fresh();
    for (const command of ["schedule", "status"]) {
      await refused({ ...c.env, EDMS_BACKUP_SCHEDULE: "0 2 31 2 *" }, /EDMS_BACKUP_SCHEDULE '0 2 31 2 \*' never fires/, [command]);
    }
  });
});

describe("PostgreSQL restarted at each step of a backup", () => {
  it("the backup completes, or fails with one line of its own; nothing half-made is kept; status names the cause", { timeout: 300_000 }, async () => {
    const c = fresh();
    const hook = path.join(world.root, "restart-hook");
    const trace = path.join(world.root, "backup-trace");
    fs.writeFileSync(hook, `#!/usr/bin/env bash
printf '%s\\n' "$1" >>"${trace}"
[[ "$1" == "$EDMS_TEST_AT" ]] || exit 0
for fd in /proc/self/fd/*; do fd=\${fd##*/}; ((fd > 2 && fd < 255)) && eval "exec $fd>&-"; done
runuser -u postgres -- ${pgBin}/pg_ctl -D "$EDMS_TEST_PGDATA" -m fast -w restart >/dev/null 2>&1
`, { mode: 0o755 });
    const env = { ...c.env, EDMS_BACKUP_STEP_HOOK: hook, EDMS_TEST_AT: "", EDMS_TEST_PGDATA: path.join(world.cluster.dir, "data") };
    await backupOk(env);
    const steps = [...new Set(fs.readFileSync(trace, "utf8").trim().split("\n"))];
    expect(steps).toEqual(expect.arrayContaining(["backup.snapshot-opened", "backup.dump-started", "backup.storage.1.copied", "backup.dump-finished", "backup.written"]));
    let failed = 0;
    for (const step of steps) {
      const result = await world.edms(["backup"], { env: { ...env, EDMS_TEST_AT: step } });
      ownLines(result);
      expect(listDir(c.backups).filter((n) => n.startsWith(".tmp")), step).toEqual([]);
      if (result.code !== 0) {
        failed++;
        expect(result.stderr.trim().split("\n"), step).toEqual([expect.stringMatching(/lost the connection to PostgreSQL at .* \(server restarted or stopped\)/)]);
        expect(fs.readFileSync(path.join(c.backups, ".status"), "utf8"), step).toMatch(/last_failure_message=.*lost the connection to PostgreSQL/);
      }
      for (const id of listDir(c.backups).filter((n) => /^\d{8}_\d{6}$/.test(n))) {
        expect((await world.edms(["verify", id], { env: c.env })).code, `${step}: ${id}`).toBe(0);
      }
    }
    // A restart while the dump runs must end that backup.
    expect(failed).toBeGreaterThanOrEqual(2);
  });
});
