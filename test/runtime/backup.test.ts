import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { changeStorageTree, snapshotTree } from "../support/fixtures";
import { dbFingerprint, startCluster, type Cluster } from "../support/pg";
import { mustRun, run } from "../support/run";
import { listDir, makeWorld, type World } from "../support/world";

let world: World;
let target: Cluster;

beforeAll(async () => {
  [world, target] = await Promise.all([makeWorld(), startCluster("other password")]);
});
afterAll(async () => {
  await Promise.all([world?.cleanup(), target?.stop()]);
});

describe("backup", () => {
  let id: string;
  let storageBefore: ReturnType<typeof snapshotTree>[];
  let dbBefore: Awaited<ReturnType<typeof dbFingerprint>>;

  beforeAll(async () => {
    storageBefore = world.storage.map(snapshotTree);
    dbBefore = await dbFingerprint(world.env, "edms");
    id = await world.backup({ EDMS_SECRET_SECRET_KEY: "the-secret-key-value", EDMS_SECRET_ENCRYPTION_KEY: "the-encryption-key" });
  });

  it("prints a UTC YYYYMMDD_HHMMSS id last and builds the documented layout", () => {
    expect(id).toMatch(/^\d{8}_\d{6}$/);
    const stamp = `${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)}T${id.slice(9, 11)}:${id.slice(11, 13)}:${id.slice(13, 15)}Z`;
    expect(Math.abs(Date.parse(stamp) - Date.now())).toBeLessThan(120_000);
    const dir = path.join(world.backupDir, id);
    expect(listDir(dir)).toEqual(["SHA256SUMS", "config.tar.gz", "db", "manifest.json", "manifest.txt", "meta", "storage-1", "storage-2"]);
    expect(fs.existsSync(path.join(dir, "db", "toc.dat"))).toBe(true);
    expect(listDir(world.backupDir).filter((n) => n.startsWith(".tmp"))).toEqual([]);
  });

  it("passes sha256sum -c from inside the folder and edms-backup verify", async () => {
    const dir = path.join(world.backupDir, id);
    await mustRun("sha256sum", ["--check", "--strict", "--quiet", "SHA256SUMS"], { cwd: dir });
    const verify = await world.edms(["verify", id]);
    expect(verify.stderr).toContain("is whole");
    expect(verify.code).toBe(0);
  });

  it("restores with stock pg_restore into a new PostgreSQL, identical to the source", async () => {
    const dir = path.join(world.backupDir, id);
    await target.psql("CREATE DATABASE restored", "postgres");
    await mustRun("pg_restore", ["--no-owner", "--no-privileges", "--exit-on-error", "-d", "restored", path.join(dir, "db")], { env: target.env });
    expect(await dbFingerprint(target.env, "restored")).toEqual(dbBefore);
    const seq = await target.psql("SELECT last_value FROM users_user_id_seq", "restored");
    expect(seq.trim()).toBe("4");
  });

  it("gives each storage folder back byte for byte with cp -a and with GNU tar", async () => {
    for (const [i, before] of storageBefore.entries()) {
      const copy = fs.mkdtempSync(path.join(os.tmpdir(), "edms-cp-"));
      await mustRun("cp", ["-a", `${path.join(world.backupDir, id, `storage-${i + 1}`)}/.`, `${copy}/`]);
      expect(snapshotTree(copy)).toEqual(before);
      const viaTar = fs.mkdtempSync(path.join(os.tmpdir(), "edms-tar-"));
      await mustRun("bash", ["-c", 'tar -C "$1" --format=posix -cf - . | tar -C "$2" -xpf -', "_", path.join(world.backupDir, id, `storage-${i + 1}`), viaTar]);
      expect(snapshotTree(viaTar)).toEqual(before);
      fs.rmSync(copy, { recursive: true });
      fs.rmSync(viaTar, { recursive: true });
    }
  });

  it("archives the config files by their paths and records the missing one", async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "edms-config-"));
    await mustRun("tar", ["-C", out, "-xzpf", path.join(world.backupDir, id, "config.tar.gz")]);
    expect(fs.readFileSync(path.join(out, "srv/edms/.env"), "utf8")).toContain("SECRET_KEY=abc");
    expect(fs.statSync(path.join(out, "srv/edms/.env")).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(path.join(out, "srv/edms/nginx/edms.conf"), "utf8")).toContain("listen 80");
    const manifest = JSON.parse(fs.readFileSync(path.join(world.backupDir, id, "manifest.json"), "utf8"));
    expect(manifest.config.missing).toEqual(["/srv/edms/docker-compose.prod.yml"]);
    expect(manifest.config.included).toEqual(["/srv/edms/.env", "/srv/edms/nginx"]);
    fs.rmSync(out, { recursive: true });
  });

  it("writes manifests with row counts of every table, versions and storage counts", () => {
    const dir = path.join(world.backupDir, id);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8"));
    expect(manifest.id).toBe(id);
    expect(manifest.database.tables).toMatchObject({
      "public.users_user": 4,
      "public.users_userrole": 4,
      "public.documents_document": 200,
      "public.audit_audittrail": 1000,
      "public.django_session": 1,
      "public.Odd \"Table\"\twith tab": 2,
      "reports.summary": 4,
    });
    expect(manifest.database.serverVersion).toMatch(/^15\./);
    expect(manifest.storage[0]).toMatchObject({ index: 1, source: world.storage[0], path: "storage-1", files: 18, symlinks: 4 });
    const text = fs.readFileSync(path.join(dir, "manifest.txt"), "utf8");
    for (const expected of ["public.users_user", "PostgreSQL 15.", "pg_dump (PostgreSQL)", "storage-1/", "pg_restore", "cp -a", "config.tar.gz", "log in again"]) {
      expect(text).toContain(expected);
    }
  });

  it("records salted fingerprints of the secrets, never their values", async () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(world.backupDir, id, "manifest.json"), "utf8"));
    expect(Object.keys(manifest.secrets).sort()).toEqual(["ENCRYPTION_KEY", "SECRET_KEY"]);
    expect(manifest.secrets.SECRET_KEY.sha256).toMatch(/^[0-9a-f]{64}$/);
    const grep = await run("grep", ["-r", "-a", "-l", "-e", "the-secret-key-value", "-e", "the-encryption-key", path.join(world.backupDir, id)]);
    expect(grep.stdout).toBe("");
    expect(grep.code).toBe(1);
  });

  it("is listed newest first with its id first on the line", async () => {
    const list = await world.edms(["list"]);
    expect(list.code).toBe(0);
    expect(list.stdout.split("\n")[0].split(/\s+/)[0]).toBe(id);
  });
});

describe("repeat backup", () => {
  it("hard-links unchanged files to the previous backup and leaves that backup as it was", async () => {
    const first = await world.backup();
    const firstTree = snapshotTree(path.join(world.backupDir, first, "storage-1"));
    changeStorageTree(world.storage[0], "day2");
    const expected = snapshotTree(world.storage[0]);
    await new Promise((r) => setTimeout(r, 1100));
    const second = await world.backup();
    const info = fs.readFileSync(path.join(world.backupDir, second, "meta", "info"), "utf8");
    expect(Number(/storage_1_linked=(\d+)/.exec(info)?.[1])).toBeGreaterThan(5);
    const inode = (id: string, rel: string) => fs.statSync(path.join(world.backupDir, id, "storage-1", rel)).ino;
    expect(inode(second, "random.bin")).toBe(inode(first, "random.bin"));
    expect(inode(second, "documents/2026/01/plain.pdf")).not.toBe(inode(first, "documents/2026/01/plain.pdf"));
    expect(inode(second, "script.sh")).not.toBe(inode(first, "script.sh"));
    expect(snapshotTree(path.join(world.backupDir, first, "storage-1"))).toEqual(firstTree);
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), "edms-cp-"));
    await mustRun("cp", ["-a", `${path.join(world.backupDir, second, "storage-1")}/.`, `${copy}/`]);
    expect(snapshotTree(copy)).toEqual(expected);
    expect((await world.edms(["verify", first])).code).toBe(0);
    expect((await world.edms(["verify", second])).code).toBe(0);
    fs.rmSync(copy, { recursive: true });
  });
});

describe("verify", () => {
  async function damagedCopy(damage: (dir: string) => void): Promise<{ code: number; stderr: string }> {
    const id = "20000101_000000";
    const source = (await world.edms(["list"])).stdout.split(/\s+/)[0];
    const dir = path.join(world.backupDir, id);
    await mustRun("cp", ["-a", path.join(world.backupDir, source), dir]);
    damage(dir);
    const result = await world.edms(["verify", id]);
    fs.rmSync(dir, { recursive: true, force: true });
    return result;
  }

  it("fails naming a file whose bytes changed", async () => {
    const result = await damagedCopy((dir) => fs.appendFileSync(path.join(dir, "storage-1", "documents", "2026", "01", "plain.pdf"), "x"));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/damaged: .*plain\.pdf/);
  });

  it("fails when a file is missing, added, or the dump does not read", async () => {
    expect((await damagedCopy((dir) => fs.rmSync(path.join(dir, "storage-2", "random.bin")))).code).not.toBe(0);
    expect((await damagedCopy((dir) => fs.writeFileSync(path.join(dir, "storage-1", "extra"), "x"))).stderr).toContain("SHA256SUMS lists");
    expect((await damagedCopy((dir) => fs.writeFileSync(path.join(dir, "db", "toc.dat"), "garbage"))).code).not.toBe(0);
    expect((await damagedCopy((dir) => fs.rmSync(path.join(dir, "storage-1", "empty", "nested-empty"), { recursive: true }))).stderr).toContain("entries");
  });

  it("fails when SHA256SUMS itself was edited, though every file is intact", async () => {
    const result = await damagedCopy((dir) => {
      const sums = fs.readFileSync(path.join(dir, "SHA256SUMS"), "utf8").split("\n");
      const i = sums.findIndex((l) => l.includes("random.bin"));
      sums[i] = `${"0".repeat(64)}${sums[i].slice(64)}`;
      fs.writeFileSync(path.join(dir, "SHA256SUMS"), sums.join("\n"));
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/damaged: .*random\.bin: FAILED/);
  });

  it("hashes and verifies the same without openssl (sha256sum only)", async () => {
    // A PATH with every tool of this machine but openssl.
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "edms-noopenssl-"));
    for (const d of (process.env.PATH ?? "").split(":")) {
      if (!fs.existsSync(d)) continue;
      for (const name of fs.readdirSync(d)) {
        if (name !== "openssl" && !fs.existsSync(path.join(bin, name))) fs.symlinkSync(path.join(d, name), path.join(bin, name));
      }
    }
    const env = { PATH: bin };
    expect((await run("bash", ["-c", "command -v openssl"], { env })).code).not.toBe(0);
    const id = (await world.edms(["backup"], { env })).stdout.trim().split("\n").pop()!;
    await mustRun("sha256sum", ["--check", "--strict", "--quiet", "SHA256SUMS"], { cwd: path.join(world.backupDir, id) });
    expect((await world.edms(["verify", id], { env })).code).toBe(0);
    expect((await world.edms(["verify", id])).code).toBe(0);
    fs.appendFileSync(path.join(world.backupDir, id, "storage-1", "random.bin"), "x");
    expect((await world.edms(["verify", id], { env })).stderr).toMatch(/random\.bin: FAILED/);
    fs.rmSync(path.join(world.backupDir, id), { recursive: true });
    fs.rmSync(bin, { recursive: true });
  });

  it("refuses an id that is not a backup", async () => {
    const result = await world.edms(["verify", "20990101_000000"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("edms-backup list");
  });
});

describe("consistency while the application writes", () => {
  it("dumps one snapshot: the manifest's counts are those of the restored database", async () => {
    const writer = run("bash", ["-c", `for i in $(seq 1 150); do psql -X -q -c "BEGIN; INSERT INTO audit_audittrail (user_id, action, at) VALUES (1, 'EDIT', now()); INSERT INTO documents_documentversion (document_id, version) VALUES (1, $i); COMMIT;" || exit 1; done`], { env: world.env });
    await new Promise((r) => setTimeout(r, 300));
    const id = await world.backup();
    await writer;
    const manifest = JSON.parse(fs.readFileSync(path.join(world.backupDir, id, "manifest.json"), "utf8"));
    const db = `snap_${id}`;
    await target.psql(`CREATE DATABASE ${db}`, "postgres");
    await mustRun("pg_restore", ["--no-owner", "-d", db, path.join(world.backupDir, id, "db")], { env: target.env });
    const counts = await target.psql("SELECT (SELECT count(*) FROM audit_audittrail) || ' ' || (SELECT count(*) FROM documents_documentversion)", db);
    const [audit, versions] = counts.trim().split(" ").map(Number);
    expect(audit).toBe(manifest.database.tables["public.audit_audittrail"]);
    expect(versions).toBe(manifest.database.tables["public.documents_documentversion"]);
    // Both inserts are in one transaction: a consistent snapshot has as many new rows of each.
    expect(audit - 1000).toBe(versions - 400);
  });
});
