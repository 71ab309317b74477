import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { snapshotTree } from "../support/fixtures";
import { dbFingerprint } from "../support/pg";
import { mustRun, run } from "../support/run";
import { listDir, makeWorld, type World } from "../support/world";

// `edms-backup drill`: the newest backup restored beside the live data on the same server,
// checked, dropped; the live database and storage untouched while the application writes.
let world: World;
let id: string;

beforeAll(async () => {
  world = await makeWorld();
  id = await world.backup();
});
afterAll(async () => {
  await world?.cleanup();
});

const scratchDatabases = async () => (await world.cluster.psql("SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'edms\\_drill\\_%'", "postgres")).trim();
const metric = (text: string, name: string) => text.split("\n").find((l) => l.startsWith(`${name}{`))?.split(" ").pop();

describe("drill", () => {
  it("restores the newest backup beside the live data, reports its restore time, and leaves the live data as it was", async () => {
    const before = await dbFingerprint(world.cluster.env, "edms");
    const trees = world.storage.map((dir) => snapshotTree(dir));
    const auditBefore = Number(await world.cluster.psql("SELECT count(*) FROM audit_audittrail"));
    // The application goes on writing while the drill runs.
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) {
        await world.cluster.psql("INSERT INTO audit_audittrail (user_id, action, at) VALUES (1, 'VIEW', now())");
        written++;
      }
    })();
    const result = await world.edms(["drill"]);
    writing = false;
    await writer;

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^Drill of backup ${id}: restored in \\d+ s, beside the live data`));
    expect(result.stdout).toMatch(/\d+ tables with every row as in the manifest; \d+ storage files matching their checksums/);
    expect(written).toBeGreaterThan(0);
    // Live: every table as before but the one the application wrote to, which holds its rows.
    const after = await dbFingerprint(world.cluster.env, "edms");
    expect(after.schema).toBe(before.schema);
    for (const table of Object.keys(before.tables).filter((t) => !t.includes("audit_audittrail"))) expect(after.tables[table]).toBe(before.tables[table]);
    expect(Number(await world.cluster.psql("SELECT count(*) FROM audit_audittrail"))).toBe(auditBefore + written);
    expect(world.storage.map((dir) => snapshotTree(dir))).toEqual(trees);
    // Nothing left behind; the result recorded for status and metrics.
    expect(await scratchDatabases()).toBe("");
    expect(listDir(world.backupDir).filter((n) => n.startsWith(".drill"))).toEqual([]);
    const metrics = (await world.edms(["metrics"])).stdout;
    expect(metric(metrics, "edms_backup_drill_last_success")).toBe("1");
    expect(Number(metric(metrics, "edms_backup_drill_last_restore_seconds"))).toBeGreaterThanOrEqual(0);
    expect((await run("promtool", ["check", "metrics"], { input: metrics })).code).toBe(0);
    expect((await world.edms(["status"])).stdout).toMatch(new RegExp(`^last drill: +\\S+: backup ${id} restored in \\d+ s$`, "m"));
  });

  it("a drill killed while it loads leaves scratch data that the next drill removes", async () => {
    const hook = path.join(world.root, "kill-hook.sh");
    fs.writeFileSync(hook, '#!/bin/sh\n[ "$1" = drill.load-started ] && kill -9 "$2"\nexit 0\n', { mode: 0o755 });
    const killed = await world.edms(["drill", id], { env: { EDMS_BACKUP_STEP_HOOK: hook } });
    expect(killed.code).not.toBe(0);
    expect(await scratchDatabases()).toBe(`edms_drill_${id}`);
    const again = await world.edms(["drill", id]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain(`dropped edms_drill_${id}, left by a drill that was stopped`);
    expect(await scratchDatabases()).toBe("");
    expect(listDir(world.backupDir).filter((n) => n.startsWith(".drill"))).toEqual([]);
  });

  it("a corrupted backup fails loudly, naming the damage; nothing is left behind", async () => {
    const broken = "20000101_000000";
    await mustRun("cp", ["-a", path.join(world.backupDir, id), path.join(world.backupDir, broken)]);
    try {
      const doc = (await mustRun("find", [path.join(world.backupDir, broken, "storage-1"), "-type", "f", "-name", "*.pdf"])).split("\n")[0];
      fs.appendFileSync(doc, "tampered");
      const result = await world.edms(["drill", broken]);
      expect(result.code).toBe(1);
      expect(result.stderr.trim().split("\n").pop()).toMatch(new RegExp(`^edms-backup drill: backup ${broken} is damaged`));
      expect(await scratchDatabases()).toBe("");
      expect(metric((await world.edms(["metrics"])).stdout, "edms_backup_drill_last_success")).toBe("0");
      expect((await world.edms(["status"])).stdout).toMatch(new RegExp(`^last drill: +\\S+: FAILED: backup ${broken} is damaged`, "m"));
    } finally {
      fs.rmSync(path.join(world.backupDir, broken), { recursive: true, force: true });
    }
  });

  it("refuses to start when the backup folder has no room for the storage copy", async () => {
    const mount = fs.mkdtempSync(path.join(os.tmpdir(), "edms-drill-full-"));
    await mustRun("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", mount]);
    try {
      await mustRun("cp", ["-a", path.join(world.backupDir, id), path.join(mount, id)]);
      const free = Number((await mustRun("df", ["-P", "-B1", mount])).split("\n")[1].split(/\s+/)[3]);
      fs.writeFileSync(path.join(mount, "filler"), Buffer.alloc(Math.max(0, free - 64 * 1024)));
      const result = await world.edms(["drill"], { env: { EDMS_BACKUP_DIR: mount } });
      expect(result.code).toBe(1);
      expect(result.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^edms-backup drill: the backup folder .* free, the drill's copy of the storage needs .*: free space there/)]);
      expect(await scratchDatabases()).toBe("");
    } finally {
      await run("umount", [mount]);
      fs.rmdirSync(mount);
    }
  });
});
