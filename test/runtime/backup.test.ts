import { spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { changeStorageTree, snapshotTree } from "../support/fixtures";
import { dbFingerprint, freePort, startCluster, type Cluster } from "../support/pg";
import { edmsBackup, mustRun, run } from "../support/run";
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
    // Each file's checksum is kept once, in SHA256SUMS: meta holds no second list of them.
    expect(listDir(path.join(dir, "meta")).filter((n) => !/^(database\.json|info|roles\.json|secrets\.tsv|tables\.json|storage-[12]\.(catalog\.gz|torn))$/.test(n))).toEqual([]);
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
      // Quoted where needed, so that no two tables share a key.
      'public."Odd ""Table""\twith tab"': 2,
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

  // Issue 32, finding 7: the hard-link farm of the previous copy brought the stray along,
  // and every later backup failed with "run the backup again".
  it("a stray file and folder put into the newest backup's storage copy: the next backup leaves them out, names that backup, and checks out", async () => {
    const first = await world.backup();
    const copy = path.join(world.backupDir, first, "storage-1");
    fs.writeFileSync(path.join(copy, "stray.txt"), "put here by hand");
    fs.mkdirSync(path.join(copy, "stray-dir"));
    fs.writeFileSync(path.join(copy, "stray-dir", "inside.txt"), "x");
    await new Promise((r) => setTimeout(r, 1100));
    const next = await world.edms(["backup"]);
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toMatch(new RegExp(`warning: storage-1 of backup ${first} holds 3 entries its catalog does not list \\(first: stray-dir\\).*'edms-backup verify ${first}'`));
    const id = next.stdout.trim().split("\n").pop()!;
    expect(fs.existsSync(path.join(world.backupDir, id, "storage-1", "stray.txt"))).toBe(false);
    expect(fs.existsSync(path.join(world.backupDir, id, "storage-1", "stray-dir"))).toBe(false);
    expect(fs.readFileSync(path.join(copy, "stray.txt"), "utf8")).toBe("put here by hand"); // not ours to remove
    expect((await world.edms(["verify", id])).code).toBe(0);
    await new Promise((r) => setTimeout(r, 1100));
    const after = await world.edms(["backup"]);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stderr).not.toMatch(/catalog does not list/);
    fs.rmSync(path.join(copy, "stray.txt"));
    fs.rmSync(path.join(copy, "stray-dir"), { recursive: true });
  });

  it("links to a backup whose catalogs an earlier version wrote uncompressed (meta/storage-<i>.catalog)", async () => {
    const before = await world.backup();
    const meta = path.join(world.backupDir, before, "meta");
    for (const i of [1, 2]) {
      fs.writeFileSync(path.join(meta, `storage-${i}.catalog`), zlib.gunzipSync(fs.readFileSync(path.join(meta, `storage-${i}.catalog.gz`))));
      fs.rmSync(path.join(meta, `storage-${i}.catalog.gz`));
    }
    await new Promise((r) => setTimeout(r, 1100));
    const next = await world.backup();
    const info = fs.readFileSync(path.join(world.backupDir, next, "meta", "info"), "utf8");
    expect(Number(/storage_1_linked=(\d+)/.exec(info)?.[1])).toBeGreaterThan(5);
    expect(fs.statSync(path.join(world.backupDir, next, "storage-2", "random.bin")).ino).toBe(fs.statSync(path.join(world.backupDir, before, "storage-2", "random.bin")).ino);
    expect(fs.existsSync(path.join(world.backupDir, next, "meta", "storage-1.catalog.gz"))).toBe(true);
    expect((await world.edms(["verify", next])).code).toBe(0);
  });

  it("stays exact when entries change their kind, and links to a backup of the version before catalogs", async () => {
    const root = world.storage[0];
    const kind = path.join(root, "kind");
    fs.mkdirSync(path.join(kind, "dir"), { recursive: true });
    fs.writeFileSync(path.join(kind, "file"), "a file\n");
    fs.writeFileSync(path.join(kind, "dir", "inner.txt"), "inside\n");
    fs.writeFileSync(path.join(kind, "gone.txt"), "removed next\n");
    fs.symlinkSync("file", path.join(kind, "link"));
    const before = await world.backup();
    const beforeTree = snapshotTree(path.join(world.backupDir, before, "storage-1"));
    fs.rmSync(path.join(kind, "file"));
    fs.mkdirSync(path.join(kind, "file"));
    fs.writeFileSync(path.join(kind, "file", "now.txt"), "a folder now\n");
    fs.rmSync(path.join(kind, "dir"), { recursive: true });
    fs.writeFileSync(path.join(kind, "dir"), "a file now\n");
    fs.rmSync(path.join(kind, "gone.txt"));
    fs.rmSync(path.join(kind, "link"));
    fs.writeFileSync(path.join(kind, "link"), "not a link now\n");
    await new Promise((r) => setTimeout(r, 1100));
    const after = await world.backup();
    // As the first test compares: a copy (cp -a) of the backup's folder, whose files are
    // not linked to other backups.
    const copied = async (id: string) => {
      const copy = fs.mkdtempSync(path.join(os.tmpdir(), "edms-cp-"));
      await mustRun("cp", ["-a", `${path.join(world.backupDir, id, "storage-1")}/.`, `${copy}/`]);
      const tree = snapshotTree(copy);
      fs.rmSync(copy, { recursive: true });
      return tree;
    };
    expect(await copied(after)).toEqual(snapshotTree(root));
    expect(snapshotTree(path.join(world.backupDir, before, "storage-1"))).toEqual(beforeTree);

    // `after` as the version before catalogs wrote it: meta/storage-<i>.index (find's
    // "META\0PATH\0TARGET\0" records, in find's order), no catalog, and the checksums in
    // meta/sums.z ("HASH  NAME\0" records, as sha256sum -z writes them).
    await mustRun("bash", ["-c", "find storage-1 storage-2 -type f -print0 | xargs -0 sha256sum -z >meta/sums.z"], { cwd: path.join(world.backupDir, after) });
    for (const i of [1, 2]) {
      const meta = path.join(world.backupDir, after, "meta");
      const records = zlib.gunzipSync(fs.readFileSync(path.join(meta, `storage-${i}.catalog.gz`))).toString("latin1").split("\0").slice(0, -1);
      const index = records.reverse().map((r) => {
        const fields = r.split(" ");
        return `${fields.slice(0, 9).join(" ")}\0${fields.slice(10).join(" ")}\0\0`;
      });
      fs.writeFileSync(path.join(meta, `storage-${i}.index`), Buffer.from(index.join(""), "latin1"));
      fs.rmSync(path.join(meta, `storage-${i}.catalog.gz`));
    }
    fs.appendFileSync(path.join(kind, "dir"), "changed again\n");
    await new Promise((r) => setTimeout(r, 1100));
    const upgraded = await world.backup();
    const info = fs.readFileSync(path.join(world.backupDir, upgraded, "meta", "info"), "utf8");
    expect(Number(/storage_1_linked=(\d+)/.exec(info)?.[1])).toBeGreaterThan(5);
    const inode = (id: string, rel: string) => fs.statSync(path.join(world.backupDir, id, "storage-1", rel)).ino;
    expect(inode(upgraded, "random.bin")).toBe(inode(after, "random.bin"));
    expect(inode(upgraded, "kind/dir")).not.toBe(inode(after, "kind/dir"));
    expect(await copied(upgraded)).toEqual(snapshotTree(root));
    expect((await world.edms(["verify", upgraded])).code).toBe(0);
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

// Bad input, faults and atomicity, on a world of their own.
describe("backup refusals and atomicity", () => {
  let world: World;
  let firstId: string;

  beforeAll(async () => {
    world = await makeWorld();
    firstId = await world.backup();
  });
  const fakeDirs: string[] = [];
  afterAll(async () => {
    await world?.cleanup();
    fakeDirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true }));
  });

  /** Fails with exactly one line on stderr, and every older backup is still whole. */
  async function expectRefused(result: { code: number; stderr: string }, cause: RegExp): Promise<void> {
    expect(result.code).not.toBe(0);
    const lines = result.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(cause);
    expect(listDir(world.backupDir).filter((n) => /^\d{8}_\d{6}$/.test(n))).toEqual([firstId]);
    expect(listDir(world.backupDir).filter((n) => n.startsWith(".tmp"))).toEqual([]);
    expect((await world.edms(["verify", firstId])).code).toBe(0);
  }

  function fakeTool(name: string, script: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edms-fake-"));
    fakeDirs.push(dir);
    fs.writeFileSync(path.join(dir, name), `#!/usr/bin/env bash\n${script}\n`, { mode: 0o755 });
    fs.chmodSync(dir, 0o755);
    return `${dir}:${process.env.PATH}`;
  }

  describe("a backup refuses bad input with one line naming the cause", () => {
    it("database unreachable", async () => {
      const result = await world.edms(["backup"], { env: { PGPORT: String(await freePort()) } });
      await expectRefused(result, /database unreachable at edms@127\.0\.0\.1:\d+\/edms .*PGHOST/);
    });

    it("dump compression that is not a gzip level", async () => {
      const result = await world.edms(["backup"], { env: { EDMS_BACKUP_DB_COMPRESSION: "fast" } });
      await expectRefused(result, /EDMS_BACKUP_DB_COMPRESSION is 'fast': set it to a gzip level from 0 \(none\) to 9 \(1, the default\)/);
    });

    it("dump members setting that is not 0 or 1", async () => {
      const result = await world.edms(["backup"], { env: { EDMS_BACKUP_DB_MEMBERS: "yes" } });
      await expectRefused(result, /EDMS_BACKUP_DB_MEMBERS is 'yes': set it to 1 to compress the dump in members .* or 0 \(the default\)/);
    });

    it("wrong password", async () => {
      const result = await world.edms(["backup"], { env: { PGPASSWORD: "not the password" } });
      await expectRefused(result, /wrong password .* set PGPASSWORD \(stack config dbPassword\)/);
    });

    it("database that does not exist", async () => {
      const result = await world.edms(["backup"], { env: { PGDATABASE: "nope" } });
      await expectRefused(result, /database "nope" does not exist/);
    });

    it("pg_dump older than the server, naming the image to use", async () => {
      const PATH = fakeTool("pg_dump", 'if [[ "$1" == --version ]]; then echo "pg_dump (PostgreSQL) 14.11"; else exec /usr/bin/pg_dump "$@"; fi');
      const result = await world.edms(["backup"], { env: { PATH } });
      await expectRefused(result, /pg_dump 14 is older than the PostgreSQL 15 server .*use the image postgres:15-bookworm/);
    });

    it("storage folder missing", async () => {
      const missing = path.join(world.root, "no-such-folder");
      const result = await world.edms(["backup"], { env: { EDMS_BACKUP_STORAGE_DIRS: `${world.storage[0]}:${missing}` } });
      await expectRefused(result, new RegExp(`storage folder ${missing} is missing`));
    });

    it("storage path that is a file, not a folder", async () => {
      const file = path.join(world.root, "not-a-folder");
      fs.writeFileSync(file, "x");
      const result = await world.edms(["backup"], { env: { EDMS_BACKUP_STORAGE_DIRS: file } });
      await expectRefused(result, new RegExp(`storage folder ${file} is not a folder`));
    });

    it("storage folder or a file in it unreadable (as a non-root user)", async () => {
      const base = fs.mkdtempSync(path.join(os.tmpdir(), "edms-nobody-"));
      fs.chmodSync(base, 0o755);
      const backups = path.join(base, "backups");
      const locked = path.join(base, "locked");
      const partly = path.join(base, "partly");
      fs.mkdirSync(backups);
      fs.mkdirSync(locked, { mode: 0o700 });
      fs.mkdirSync(partly, { mode: 0o755 });
      fs.writeFileSync(path.join(partly, "ok.pdf"), "ok", { mode: 0o644 });
      fs.writeFileSync(path.join(partly, "secret.pdf"), "no", { mode: 0o600 });
      await mustRun("chown", ["nobody", backups]);
      const env = { ...world.env, EDMS_BACKUP_DIR: backups, EDMS_BACKUP_CONFIG_PATHS: "" };
      const whole = await run(edmsBackup, ["backup"], { user: "nobody", env: { ...env, EDMS_BACKUP_STORAGE_DIRS: locked } });
      expect(whole.code).not.toBe(0);
      expect(whole.stderr.trim().split("\n")).toEqual([expect.stringMatching(/storage folder .*locked is not readable by uid 65534/)]);
      const part = await run(edmsBackup, ["backup"], { user: "nobody", env: { ...env, EDMS_BACKUP_STORAGE_DIRS: partly } });
      expect(part.code).not.toBe(0);
      expect(part.stderr.trim().split("\n")).toEqual([expect.stringMatching(/storage folder .*partly is not fully readable .*secret\.pdf.*Permission denied/)]);
      expect(listDir(backups).filter((n) => !n.startsWith(".lock") && !n.startsWith(".status"))).toEqual([]);
      fs.rmSync(base, { recursive: true, force: true });
    });

    it("backup folder not writable (as a non-root user)", async () => {
      const result = await run(edmsBackup, ["backup"], { user: "nobody", env: world.env });
      expect(result.code).not.toBe(0);
      expect(result.stderr.trim().split("\n")).toEqual([expect.stringMatching(/backup folder .* is not writable by uid 65534/)]);
      expect((await world.edms(["verify", firstId])).code).toBe(0);
    });

    it("backup folder full", async () => {
      const mount = fs.mkdtempSync(path.join(os.tmpdir(), "edms-full-"));
      await mustRun("mount", ["-t", "tmpfs", "-o", "size=6m", "tmpfs", mount]);
      try {
        const env = { EDMS_BACKUP_DIR: mount };
        const first = await world.backup(env);
        const free = Number((await mustRun("df", ["-P", "-B1", mount])).split("\n")[1].split(/\s+/)[3]);
        fs.writeFileSync(path.join(mount, "filler"), Buffer.alloc(Math.max(0, free - 200 * 1024)));
        const result = await world.edms(["backup"], { env });
        expect(result.code).not.toBe(0);
        expect(result.stderr.trim().split("\n")).toEqual([expect.stringMatching(/backup folder .* is full.*older backups are untouched/)]);
        expect(listDir(mount).filter((n) => !n.startsWith(".lock") && !n.startsWith(".status"))).toEqual([first, "filler"]);
        expect((await world.edms(["verify", first], { env })).code).toBe(0);
      } finally {
        await run("umount", [mount]);
        fs.rmdirSync(mount);
      }
    });
  });

  it("backup folder filling up at any point of a backup: one line naming it, nothing half-made, older backups whole", { timeout: 120_000 }, async () => {
    const mount = fs.mkdtempSync(path.join(os.tmpdir(), "edms-fill-"));
    const storage = fs.mkdtempSync(path.join(os.tmpdir(), "edms-fill-storage-"));
    await mustRun("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", mount]);
    try {
      for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(storage, `doc-${i}.pdf`), `document ${i}\n`.repeat(100));
      const env = { EDMS_BACKUP_DIR: mount, EDMS_BACKUP_STORAGE_DIRS: storage, EDMS_BACKUP_CONFIG_PATHS: "" };
      const first = await world.backup(env);
      fs.writeFileSync(path.join(storage, "big.bin"), crypto.randomBytes(1536 * 1024));
      let full = 0;
      for (const freeKiB of [1100, 1300, 1500, 1560, 1620, 1660, 1900, 2100]) {
        fs.rmSync(path.join(mount, "filler"), { force: true });
        const free = Number((await mustRun("df", ["-P", "-B1", mount])).split("\n")[1].split(/\s+/)[3]);
        fs.writeFileSync(path.join(mount, "filler"), Buffer.alloc(Math.max(0, free - freeKiB * 1024)));
        const before = listDir(mount).filter((n) => /^\d{8}_\d{6}$/.test(n));
        const result = await world.edms(["backup"], { env });
        const where = `${freeKiB} KiB free: ${result.stderr}`;
        expect(listDir(mount).filter((n) => n.startsWith(".tmp")), where).toEqual([]);
        if (result.code === 0) continue;
        full++;
        expect(result.stderr.trim().split("\n"), where).toEqual([expect.stringMatching(/^edms-backup backup: backup folder .* is full.*older backups are untouched/)]);
        expect(fs.readFileSync(path.join(mount, ".status"), "utf8"), where).toMatch(/last_failure_message=backup folder .* is full/);
        expect(listDir(mount).filter((n) => /^\d{8}_\d{6}$/.test(n)), where).toEqual(before);
      }
      expect(full).toBeGreaterThanOrEqual(4);
      fs.rmSync(path.join(mount, "filler"), { force: true });
      expect((await world.edms(["verify", first], { env })).code).toBe(0);
    } finally {
      await run("umount", [mount]);
      fs.rmdirSync(mount);
      fs.rmSync(storage, { recursive: true, force: true });
    }
  });

  describe("atomicity", () => {
    const slowDump = () => fakeTool("pg_dump", 'if [[ "$1" != --version ]]; then sleep 4; fi; exec /usr/bin/pg_dump "$@"');

    it("a killed backup is never listed and the next run removes what it left", async () => {
      const env: Record<string, string> = { ...(process.env as Record<string, string>), ...world.env, PATH: slowDump() };
      const child = spawn(edmsBackup, ["backup"], { env, detached: true, stdio: "ignore" });
      await new Promise((r) => setTimeout(r, 1500));
      expect(listDir(world.backupDir).some((n) => n.startsWith(".tmp-"))).toBe(true);
      process.kill(-child.pid!, "SIGKILL");
      await new Promise((r) => child.on("close", r));
      const list = await world.edms(["list"]);
      expect(list.stdout.trim().split("\n").map((l) => l.split(/\s+/)[0])).toEqual([firstId]);
      const next = await world.backup();
      expect(listDir(world.backupDir).filter((n) => n.startsWith(".tmp"))).toEqual([]);
      expect((await world.edms(["verify", next])).code).toBe(0);
      fs.rmSync(path.join(world.backupDir, next), { recursive: true });
    });

    it("a stopped backup (SIGTERM) removes its temporary folder and records the failure", async () => {
      const env: Record<string, string> = { ...(process.env as Record<string, string>), ...world.env, PATH: slowDump() };
      const child = spawn(edmsBackup, ["backup"], { env, stdio: "ignore" });
      // Stopped once it is under way (its temporary folder made), however busy the machine.
      for (let i = 0; i < 100 && !listDir(world.backupDir).some((n) => n.startsWith(".tmp-")); i++) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 300));
      child.kill("SIGTERM");
      await new Promise((r) => child.on("close", r));
      expect(listDir(world.backupDir).filter((n) => n.startsWith(".tmp"))).toEqual([]);
      expect(fs.readFileSync(path.join(world.backupDir, ".status"), "utf8")).toMatch(/last_failure_message=backup failed \(exit 143\)/);
    });

    it("a lock keeps a second backup from running at the same time", async () => {
      const holder = spawn("flock", [path.join(world.backupDir, ".lock"), "sleep", "3"], { stdio: "ignore" });
      await new Promise((r) => setTimeout(r, 300));
      const result = await world.edms(["backup"]);
      await expectRefused(result, /another backup, prune or restore is running/);
      const prune = await world.edms(["prune"]);
      expect(prune.code).not.toBe(0);
      expect(prune.stderr).toMatch(/another backup, prune or restore is running/);
      await new Promise((r) => holder.on("close", r));
    });
  });
});
