import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { snapshotTree } from "../support/fixtures";
import { dbFingerprint } from "../support/pg";
import { listDir, makeWorld, type World } from "../support/world";

// Issue 35: one document back, without touching the database or any other file.
let world: World;
let id: string;
let atBackup: Record<string, ReturnType<typeof snapshotTree>>;
let dbAtBackup: Awaited<ReturnType<typeof dbFingerprint>>;

beforeAll(async () => {
  world = await makeWorld();
  id = await world.backup();
  atBackup = { docs: snapshotTree(world.storage[0]), media: snapshotTree(world.storage[1]) };
  dbAtBackup = await dbFingerprint(world.cluster.env, "edms");
});
afterAll(async () => {
  await world?.cleanup();
});

const docs = () => world.storage[0];
// A file put back alone is no longer a hard link of its twin (the other name was not asked for).
const bare = (e: ReturnType<typeof snapshotTree>[string] | undefined) => (e ? { ...e, linkedWith: undefined } : e);
const dayDir = "documents/2026/01";

describe("restore ID --files", () => {
  it("puts back a deleted, an overwritten and a deleted folder's documents as they were (owner, mode, mtime); keeps a newer file unless --overwrite; touches nothing else", async () => {
    const deleted = path.join(dayDir, "ünïcødé – 文書.pdf");
    const overwritten = path.join(dayDir, "tab\there.txt");
    const newer = path.join(dayDir, "with space.docx");
    fs.rmSync(path.join(docs(), deleted));
    fs.writeFileSync(path.join(docs(), overwritten), "scribbled over\n");
    fs.utimesSync(path.join(docs(), overwritten), new Date("2025-01-01"), new Date("2025-01-01")); // older than the backup's
    fs.writeFileSync(path.join(docs(), newer), "edited after the backup\n");
    fs.rmSync(path.join(docs(), "private"), { recursive: true });
    fs.writeFileSync(path.join(docs(), "added later.pdf"), "new\n");
    const db = await dbFingerprint(world.cluster.env, "edms");
    const media = snapshotTree(world.storage[1]);

    const paths = [deleted, overwritten, newer, "private/secret.pdf"].map((p) => path.join(docs(), p));
    const refused = await world.edms(["restore", id, "--files", ...paths]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.trim()).toMatch(/refusing to put files back without --yes/);

    const result = await world.edms(["restore", id, "--files", ...paths, "--yes"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/3 file\(s\) back, 1 kept \(newer here\), 0 already as in the backup\. The database was not touched\./);
    expect(result.stdout).toContain(`kept, newer here: ${path.join(docs(), newer)}`);
    expect(result.stdout).toContain(`back (was missing): ${path.join(docs(), deleted)}`);
    expect(result.stdout).toContain(`back (was changed): ${path.join(docs(), overwritten)}`);

    const now = snapshotTree(docs());
    for (const rel of [deleted, overwritten, "private", "private/secret.pdf"]) expect(bare(now[rel]), rel).toEqual(bare(atBackup.docs[rel]));
    // The owner 999 and mode 0700 of the deleted folder, and 1234:5678 0600 of its file.
    expect(now["private"]).toMatchObject({ mode: 0o700, uid: 999 });
    expect(now["private/secret.pdf"]).toMatchObject({ mode: 0o600, uid: 1234, gid: 5678 });
    expect(fs.readFileSync(path.join(docs(), newer), "utf8")).toBe("edited after the backup\n");
    expect(fs.readFileSync(path.join(docs(), "added later.pdf"), "utf8")).toBe("new\n");
    expect(listDir(docs()).filter((n) => n.startsWith(".edms"))).toEqual([]);
    expect(await dbFingerprint(world.cluster.env, "edms")).toEqual(db);
    expect(snapshotTree(world.storage[1])).toEqual(media);

    // With --overwrite the newer file goes too; a second run finds everything as backed up.
    const over = await world.edms(["restore", id, "--files", path.join(docs(), newer), "--overwrite", "--yes"]);
    expect(over.code, over.stderr).toBe(0);
    expect(over.stdout).toContain(`back (over a newer file: --overwrite): ${path.join(docs(), newer)}`);
    expect(bare(snapshotTree(docs())[newer])).toEqual(bare(atBackup.docs[newer]));
    const again = await world.edms(["restore", id, "--files", ...paths, "--yes"]);
    expect(again.stdout).toMatch(/0 file\(s\) back, 0 kept \(newer here\), 4 already as in the backup/);
  });

  it("puts a whole folder back, also one whose parents are gone, with the folders' own modes", async () => {
    fs.rmSync(path.join(docs(), "empty"), { recursive: true });
    fs.rmSync(path.join(docs(), "documents"), { recursive: true });
    const result = await world.edms(["restore", id, "--files", path.join(docs(), "empty"), path.join(docs(), dayDir) + "/", "--yes"]);
    expect(result.code, result.stderr).toBe(0);
    const now = snapshotTree(docs());
    for (const rel of Object.keys(atBackup.docs).filter((r) => r === "empty" || r.startsWith("empty/") || r.startsWith(dayDir))) {
      expect(bare(now[rel]), rel).toEqual(bare(atBackup.docs[rel]));
    }
    // The parents came back as they were too ("documents", "documents/2026"), not their other entries.
    expect(now["documents"]).toMatchObject({ mode: atBackup.docs["documents"].mode, mtimeNs: atBackup.docs["documents"].mtimeNs });
    expect(now["documents/latest"]).toBeUndefined();
  });

  it("as the stack's restore job: the application is not stopped (the Docker API is never asked), the file comes back", async () => {
    const file = path.join(docs(), "script.sh");
    fs.rmSync(file);
    const job = await world.edms(["restore-job", id, "--files", file], {
      // No database needed either: only files are put back.
      env: { EDMS_RESTORE_APP_CONTAINERS: "edms-app", EDMS_BACKUP_DOCKER_SOCKET: path.join(world.root, "no-docker.sock"), PGDATABASE: "", PGHOST: "/nonexistent" },
    });
    expect(job.code, job.stderr).toBe(0);
    expect(job.stdout).toMatch(/1 file\(s\) back/);
    expect(bare(snapshotTree(docs())["script.sh"])).toEqual(bare(atBackup.docs["script.sh"]));
  });

  it("a file whose name begins with - (no option of find's or tar's)", async () => {
    const file = path.join(docs(), "-v dash.pdf");
    fs.writeFileSync(file, "dash\n");
    const taken = await world.backup();
    fs.rmSync(file);
    const result = await world.edms(["restore", taken, "--files", file, "--yes"]);
    expect(result.code, result.stderr).toBe(0);
    expect(fs.readFileSync(file, "utf8")).toBe("dash\n");
    fs.rmSync(file);
  });

  it("refuses, in one line and changing nothing, a path outside the storage folders, one the backup does not hold, and --overwrite without --files", async () => {
    const before = snapshotTree(docs());
    const outside = await world.edms(["restore", id, "--files", "/etc/passwd", "--yes"]);
    expect(outside.code).not.toBe(0);
    expect(outside.stderr.trim().split("\n")).toEqual([expect.stringMatching(/\/etc\/passwd is not in a storage folder \(.*\): give an absolute path inside one of them/)]);
    const relative = await world.edms(["restore", id, "--files", "private/secret.pdf", "--yes"]);
    expect(relative.stderr.trim()).toMatch(/'private\/secret.pdf' is not absolute/);
    const missing = await world.edms(["restore", id, "--files", path.join(docs(), "added later.pdf"), path.join(docs(), "private/secret.pdf"), "--yes"]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim().split("\n")).toEqual([expect.stringMatching(/added later\.pdf is not in backup \d{8}_\d{6} \(it did not exist when the backup was taken\): pick an older backup/)]);
    const stray = await world.edms(["restore", id, "--overwrite", "--yes"]);
    expect(stray.stderr.trim()).toMatch(/--overwrite is for --files/);
    expect(snapshotTree(docs())).toEqual(before);
  });
});

describe("restore ID --database-as NAME", () => {
  it("loads the backup into a new database beside the live one and leaves it; the live one, the storage and prune leave it alone", async () => {
    await world.cluster.psql("UPDATE documents_document SET title = 'overwritten by mistake' WHERE id IN (SELECT id FROM documents_document ORDER BY id LIMIT 2)");
    const live = await dbFingerprint(world.cluster.env, "edms");
    expect(live).not.toEqual(dbAtBackup);
    const storage = world.storage.map((d) => snapshotTree(d));
    const result = await world.edms(["restore", id, "--database-as", "edms_lookback"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/Loaded backup \d{8}_\d{6} .* into database edms_lookback beside edms/);
    expect(result.stdout).toMatch(/DROP DATABASE "edms_lookback"; \(prune leaves it alone\)/);
    expect(await dbFingerprint(world.cluster.env, "edms_lookback")).toEqual(dbAtBackup);
    expect(await dbFingerprint(world.cluster.env, "edms")).toEqual(live);
    expect(world.storage.map((d) => snapshotTree(d))).toEqual(storage);
    const prune = await world.edms(["prune"], { env: { EDMS_BACKUP_KEEP_PREVIOUS_DB_HOURS: "0" } });
    expect(prune.code, prune.stderr).toBe(0);
    expect(await world.cluster.psql("SELECT count(*) FROM pg_database WHERE datname = 'edms_lookback'", "postgres")).toBe("1\n");
    // Refused in one line: a name taken, the live database's name.
    const taken = await world.edms(["restore", id, "--database-as", "edms_lookback"]);
    expect(taken.code).not.toBe(0);
    expect(taken.stderr.trim().split("\n")).toEqual([expect.stringMatching(/database edms_lookback already exists on .*: give another name, or drop that one first/)]);
    const itself = await world.edms(["restore", id, "--database-as", "edms"]);
    expect(itself.stderr.trim()).toMatch(/--database-as edms is the live database \(edms\): give a new name/);
    expect(await dbFingerprint(world.cluster.env, "edms_lookback")).toEqual(dbAtBackup);
    await world.cluster.psql("DROP DATABASE edms_lookback", "postgres");
  });
});
