import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mustRun } from "../support/run";
import { listDir, makeWorld, type World } from "../support/world";

// The tool touches only what it made (issue 32, finding 1): a database or folder is dropped
// or removed only when its record (EDMS_BACKUP_DIR/.made) says this backup folder's runs
// made it, never because of its name.

let world: World;
let id: string;
const pgBin = "/usr/lib/postgresql/15/bin";

beforeAll(async () => {
  world = await makeWorld();
  id = await world.backup();
  // Another role's databases whose names look like the tool's: one with rows and a session.
  await world.cluster.psql(`CREATE ROLE reports LOGIN PASSWORD 'reports pw';
    CREATE DATABASE edms_drill_reports OWNER reports; CREATE DATABASE "edms_restoring_${id}" OWNER reports;
    CREATE DATABASE edms_prerestore_20000101_000000 OWNER reports;`, "postgres");
  await world.cluster.psql("CREATE TABLE figures AS SELECT g AS n FROM generate_series(1, 1000) g", "edms_drill_reports");
});
afterAll(async () => {
  await world?.cleanup();
});

const foreign = ["edms_drill_reports", "edms_prerestore_20000101_000000"];

async function databases(): Promise<string[]> {
  return (await world.cluster.psql("SELECT datname FROM pg_database WHERE datname LIKE 'edms\\_%' ORDER BY 1", "postgres")).trim().split("\n").filter(Boolean);
}

/** A session of the reports role, kept open in edms_drill_reports until the test ends it. */
function reportsSession(): { alive: () => boolean; end: () => void } {
  const env = { ...process.env, ...world.cluster.env, PGUSER: "reports", PGPASSWORD: "reports pw", PGDATABASE: "edms_drill_reports" };
  const child = spawn(`${pgBin}/psql`, ["-X", "-q", "-c", "SELECT pg_sleep(600)"], { env, stdio: "ignore" });
  let done = false;
  child.on("exit", () => (done = true));
  return { alive: () => !done, end: () => child.kill("SIGKILL") };
}

async function sessionsIn(db: string): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const n = Number(await world.cluster.psql(`SELECT count(*) FROM pg_stat_activity WHERE datname = '${db}'`, "postgres"));
    if (n > 0) return n;
    await new Promise((r) => setTimeout(r, 100));
  }
  return 0;
}

/** Waits until no process of a killed run holds the backup folder's lock. */
async function waitForLock(): Promise<void> {
  await mustRun("flock", ["-w", "60", path.join(world.backupDir, ".lock"), "true"]);
}

describe("databases another role made, named like the tool's", () => {
  it("prune and drill drop none of them, nor end their sessions", async () => {
    const session = reportsSession();
    try {
      expect(await sessionsIn("edms_drill_reports")).toBe(1);
      const pruned = await world.edms(["prune"], { env: { EDMS_BACKUP_KEEP_PREVIOUS_DB_HOURS: "0" } });
      expect(pruned.code, pruned.stderr).toBe(0);
      expect(pruned.stdout).not.toMatch(/dropped/);
      const drill = await world.edms(["drill", id]);
      expect(drill.code, drill.stderr).toBe(0);
      expect(drill.stderr).not.toMatch(/dropped/);
      expect(await databases()).toEqual(expect.arrayContaining([...foreign, `edms_restoring_${id}`]));
      expect(await world.cluster.psql("SELECT count(*) FROM figures", "edms_drill_reports")).toBe("1000\n");
      expect(session.alive()).toBe(true);
      expect(await sessionsIn("edms_drill_reports")).toBe(1);
    } finally {
      session.end();
    }
  });

  it("a restore whose staging name is taken by another's database refuses, naming it, and changes nothing", async () => {
    const before = await databases();
    const backups = listDir(world.backupDir);
    const result = await world.edms(["restore", id, "--yes"]);
    expect(listDir(world.backupDir)).toEqual(backups); // not even a safety backup
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split("\n").pop()).toMatch(
      new RegExp(`^edms-backup restore: database edms_restoring_${id} exists and was not made by edms-backup for .*: it is left alone; rename or drop it`),
    );
    expect(await databases()).toEqual(before);
    expect(await world.cluster.psql("SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'edms_restoring_" + id + "'", "postgres")).toBe("reports\n");
  });
});

describe("what a stopped restore of this folder left", () => {
  let other: string;
  beforeAll(async () => {
    other = await world.backup();
  });

  it("prune drops its staging database (on record), keeps it while its journal needs it, and never another's", async () => {
    const hook = path.join(world.root, "kill-at-load.sh");
    fs.writeFileSync(hook, '#!/bin/sh\n[ "$1" = staging.load-started ] && kill -9 "$2"\nexit 0\n', { mode: 0o755 });
    const killed = await world.edms(["restore", other, "--yes"], { env: { EDMS_BACKUP_STEP_HOOK: hook } });
    expect(killed.code).not.toBe(0);
    await waitForLock();
    expect(await databases()).toContain(`edms_restoring_${other}`);
    expect(fs.readFileSync(path.join(world.backupDir, ".made"), "utf8")).toMatch(new RegExp(`^database:staging\\t\\d+\\t\\d+\\tedms_restoring_${other}$`, "m"));

    const journal = path.join(world.backupDir, ".restore-journal");
    fs.writeFileSync(journal, `id=${other}\ndb=edms\nstaging_db=edms_restoring_${other}\nphase=staged\n`);
    try {
      const kept = await world.edms(["prune"]);
      expect(kept.code, kept.stderr).toBe(0);
      expect(await databases()).toContain(`edms_restoring_${other}`);
    } finally {
      fs.rmSync(journal);
    }
    const dry = await world.edms(["prune", "--dry-run"]);
    expect(dry.stdout).toContain(`would drop database edms_restoring_${other} (left by a stopped restore or drill)`);
    expect(dry.stdout).not.toMatch(new RegExp(`edms_restoring_${id}|edms_drill_reports|edms_prerestore_20000101`));
    const pruned = await world.edms(["prune"]);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toContain(`dropped database edms_restoring_${other}`);
    expect(await databases()).not.toContain(`edms_restoring_${other}`);
    expect(await databases()).toEqual(expect.arrayContaining([...foreign, `edms_restoring_${id}`]));
    expect(fs.readFileSync(path.join(world.backupDir, ".made"), "utf8")).not.toContain(`edms_restoring_${other}`);
  });

  it("a database of its name that another made after it was dropped is not taken for it (same name, other OID)", async () => {
    const made = path.join(world.backupDir, ".made");
    const server = (await world.cluster.psql("SELECT system_identifier FROM pg_control_system()", "postgres")).trim();
    // A record whose database was dropped by hand, and whose name someone else reused since.
    fs.appendFileSync(made, `database:drill\t${server}\t1\tedms_drill_${other}\n`);
    await world.cluster.psql(`CREATE DATABASE "edms_drill_${other}" OWNER reports`, "postgres");
    const pruned = await world.edms(["prune"]);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(await databases()).toContain(`edms_drill_${other}`);
    const drill = await world.edms(["drill", other]);
    expect(drill.code).toBe(1);
    expect(drill.stderr).toMatch(new RegExp(`database edms_drill_${other} exists and was not made by edms-backup`));
    expect(await databases()).toContain(`edms_drill_${other}`);
  });
});

describe("a restore that finished", () => {
  it("prune drops the database it replaced (on record, by OID) and not another's of the same shape of name", async () => {
    // (The staging name of the first backup's id is another role's database: another id.)
    const other = await world.backup();
    const done = await world.edms(["restore", other, "--yes"]);
    expect(done.code, done.stderr).toBe(0);
    const kept = (await databases()).filter((d) => /^edms_prerestore_/.test(d) && !foreign.includes(d));
    expect(kept.length).toBe(1);
    const pruned = await world.edms(["prune"], { env: { EDMS_BACKUP_KEEP_PREVIOUS_DB_HOURS: "0" } });
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toContain(`dropped database ${kept[0]}`);
    expect(await databases()).not.toContain(kept[0]);
    expect(await databases()).toEqual(expect.arrayContaining([...foreign, `edms_restoring_${id}`]));
    expect(await world.cluster.psql("SELECT count(*) FROM figures", "edms_drill_reports")).toBe("1000\n");
  });
});

describe("folders", () => {
  it("backup, prune and drill remove only the folders their record names", async () => {
    const theirs = [".tmp-notes", ".deleting-old", ".drill-photos", `.tmp-${id}`];
    for (const name of theirs) {
      fs.mkdirSync(path.join(world.backupDir, name));
      fs.writeFileSync(path.join(world.backupDir, name, "keep.txt"), "mine");
    }
    const storageOwn = path.join(world.storage[0], ".edms-restore-stage");
    fs.mkdirSync(storageOwn);
    fs.writeFileSync(path.join(storageOwn, "draft.txt"), "mine");
    try {
      const backup = await world.edms(["backup"]);
      expect(backup.code, backup.stderr).toBe(0);
      expect((await world.edms(["prune"])).code).toBe(0);
      const drill = await world.edms(["drill"]);
      expect(drill.code, drill.stderr).toBe(0);
      for (const name of theirs) expect(fs.readFileSync(path.join(world.backupDir, name, "keep.txt"), "utf8")).toBe("mine");
      expect(fs.readFileSync(path.join(storageOwn, "draft.txt"), "utf8")).toBe("mine");
      expect(listDir(world.backupDir).filter((n) => n.startsWith(".tmp-") || n.startsWith(".drill-"))).toEqual([".drill-photos", ".tmp-notes", `.tmp-${id}`].sort());
    } finally {
      for (const name of theirs) fs.rmSync(path.join(world.backupDir, name), { recursive: true, force: true });
      fs.rmSync(storageOwn, { recursive: true, force: true });
    }
  });

  it("a backup killed half way leaves its folders on record, and the next run removes them", async () => {
    const hook = path.join(world.root, "kill-backup.sh");
    fs.writeFileSync(hook, '#!/bin/sh\n[ "$1" = backup.dump-finished ] && kill -9 "$2"\nexit 0\n', { mode: 0o755 });
    const killed = await world.edms(["backup"], { env: { EDMS_BACKUP_STEP_HOOK: hook } });
    expect(killed.code).not.toBe(0);
    await waitForLock();
    const left = listDir(world.backupDir).filter((n) => n.startsWith(".tmp-"));
    expect(left.length).toBe(2); // the backup and its work folder
    const next = await world.edms(["prune"]);
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toContain(`removing ${left[0]}, left by an interrupted run`);
    expect(listDir(world.backupDir).filter((n) => n.startsWith(".tmp-"))).toEqual([]);
  });
});

describe("prune reaches the server through EDMS_BACKUP_MAINTENANCE_DB", () => {
  it("drops what a killed drill left through that database; a server it cannot reach is one line, and the prune goes on", async () => {
    const hook = path.join(world.root, "kill-drill.sh");
    fs.writeFileSync(hook, '#!/bin/sh\n[ "$1" = drill.load-started ] && kill -9 "$2"\nexit 0\n', { mode: 0o755 });
    const killed = await world.edms(["drill", id], { env: { EDMS_BACKUP_STEP_HOOK: hook } });
    expect(killed.code).not.toBe(0);
    await waitForLock();
    expect(await databases()).toContain(`edms_drill_${id}`);
    await world.cluster.psql("CREATE DATABASE edms_maint", "postgres");
    await world.cluster.psql("ALTER DATABASE postgres ALLOW_CONNECTIONS false", "edms");
    try {
      const unreachable = await world.edms(["prune"]);
      expect(unreachable.code, unreachable.stderr).toBe(0);
      expect(unreachable.stderr.split("\n").filter((l) => l && !l.startsWith("edms-backup prune: "))).toEqual([]);
      expect(unreachable.stderr).toMatch(/database not reachable \(.*postgres.*\): databases kept by earlier restores were not checked/);
      const pruned = await world.edms(["prune"], { env: { EDMS_BACKUP_MAINTENANCE_DB: "edms_maint" } });
      expect(pruned.code, pruned.stderr).toBe(0);
      expect(pruned.stdout).toContain(`dropped database edms_drill_${id} (left by a stopped restore or drill)`);
    } finally {
      await world.cluster.psql("ALTER DATABASE postgres ALLOW_CONNECTIONS true", "edms");
    }
    expect(await databases()).not.toContain(`edms_drill_${id}`);
    expect(await databases()).toEqual(expect.arrayContaining([...foreign, `edms_restoring_${id}`]));
  });
});
