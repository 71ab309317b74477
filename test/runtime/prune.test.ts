import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mustRun } from "../support/run";
import { listDir, makeWorld, type World } from "../support/world";

let world: World;
let template: string;

beforeAll(async () => {
  world = await makeWorld();
  template = await world.backup();
});
afterAll(async () => {
  await world?.cleanup();
});

function idDaysAgo(days: number, minutes = 0): string {
  const d = new Date(Date.now() - days * 86_400_000 - minutes * 60_000);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}_${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`;
}

/** A folder of backups aged as given (copies of a real one), plus things that are not backups. */
async function backupsAged(days: number[]): Promise<{ dir: string; ids: string[] }> {
  const dir = fs.mkdtempSync(path.join(world.root, "retention-"));
  const ids = days.map((d) => idDaysAgo(d, 30));
  for (const id of ids) await mustRun("cp", ["-al", path.join(world.backupDir, template), path.join(dir, id)]);
  fs.writeFileSync(path.join(dir, "notes.txt"), "mine");
  fs.utimesSync(path.join(dir, "notes.txt"), new Date(0), new Date(0));
  fs.mkdirSync(path.join(dir, "20000101_000000-copy"));
  fs.mkdirSync(path.join(dir, "20000102_000000")); // looks like an id, but is no complete backup
  fs.writeFileSync(path.join(dir, "old.dump"), "x");
  fs.utimesSync(path.join(dir, "old.dump"), new Date(0), new Date(0));
  return { dir, ids };
}

const others = ["20000101_000000-copy", "20000102_000000", "notes.txt", "old.dump"];

describe("prune", () => {
  it("deletes backups older than the retention by their id, keeps the rest and everything else", async () => {
    const { dir, ids } = await backupsAged([0, 1, 2, 3, 5, 8, 9, 10, 30]);
    // mtimes say nothing: make the young backups look ancient and an old one new.
    for (const id of ids.slice(0, 5)) fs.utimesSync(path.join(dir, id), new Date(0), new Date(0));
    const result = await world.edms(["prune"], { env: { EDMS_BACKUP_DIR: dir } });
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split("\n").sort()).toEqual(ids.slice(5).map((id) => `deleted ${id}`).sort());
    expect(listDir(dir).filter((n) => !n.startsWith("."))).toEqual([...ids.slice(0, 5), ...others].sort());
  });

  it("always keeps the newest EDMS_BACKUP_KEEP_LAST, however old", async () => {
    const { dir, ids } = await backupsAged([20, 21, 22, 23, 40]);
    const result = await world.edms(["prune"], { env: { EDMS_BACKUP_DIR: dir, EDMS_BACKUP_KEEP_LAST: "3" } });
    expect(result.code).toBe(0);
    expect(listDir(dir).filter((n) => !n.startsWith("."))).toEqual([...ids.slice(0, 3), ...others].sort());
    const again = await world.edms(["prune"], { env: { EDMS_BACKUP_DIR: dir, EDMS_BACKUP_RETENTION_DAYS: "0", EDMS_BACKUP_KEEP_LAST: "1" } });
    expect(again.code).toBe(0);
    expect(listDir(dir).filter((n) => !n.startsWith("."))).toEqual([ids[0], ...others].sort());
  });

  it("--dry-run prints what would go and deletes nothing", async () => {
    const { dir, ids } = await backupsAged([0, 9, 12]);
    const before = listDir(dir);
    const result = await world.edms(["prune", "--dry-run"], { env: { EDMS_BACKUP_DIR: dir, EDMS_BACKUP_KEEP_LAST: "1" } });
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split("\n")).toEqual([`keep ${ids[0]} (last 1, within 7 days)`, `would delete ${ids[1]}`, `would delete ${ids[2]}`]);
    expect(listDir(dir)).toEqual(before);
  });

  it("leaves the shared files of the backups it keeps intact", async () => {
    const { dir, ids } = await backupsAged([0, 10]);
    await world.edms(["prune"], { env: { EDMS_BACKUP_DIR: dir, EDMS_BACKUP_KEEP_LAST: "1" } });
    expect(listDir(dir)).toContain(ids[0]);
    expect((await world.edms(["verify", ids[0]], { env: { EDMS_BACKUP_DIR: dir } })).code).toBe(0);
  });

  it("refuses bad settings with the variable's name", async () => {
    const result = await world.edms(["prune"], { env: { EDMS_BACKUP_KEEP_LAST: "0" } });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/EDMS_BACKUP_KEEP_LAST='0' is not a whole number >= 1/);
  });
});

describe("prune of the databases restores kept", () => {
  let id: string;
  beforeAll(async () => {
    // An in-place restore keeps the database it replaced as edms_prerestore_<time>.
    id = await world.backup();
    const restore = await world.edms(["restore", id, "--yes"]);
    expect(restore.code, restore.stderr).toBe(0);
  });

  it("prune drops databases kept by restores once they are older than the hours set", async () => {
    const before = await world.cluster.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'edms\\_prerestore\\_%'", "postgres");
    expect(Number(before)).toBeGreaterThan(0);
    const dry = await world.edms(["prune", "--dry-run"], { env: { EDMS_BACKUP_KEEP_PREVIOUS_DB_HOURS: "0" } });
    expect(dry.stdout).toMatch(/would drop database edms_prerestore_/);
    const kept = await world.edms(["prune"]);
    expect(kept.stdout).not.toMatch(/dropped/);
    const pruned = await world.edms(["prune"], { env: { EDMS_BACKUP_KEEP_PREVIOUS_DB_HOURS: "0" } });
    expect(pruned.code).toBe(0);
    expect(pruned.stdout).toMatch(/dropped database edms_prerestore_/);
    const after = await world.cluster.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'edms\\_prerestore\\_%'", "postgres");
    expect(Number(after)).toBe(0);
  });
  // Staging databases a stopped restore left: test/runtime/ownership.test.ts.
});

// Grandfather-father-son: each rule as restic's forget defines it, so restic itself is the
// oracle: the same times as restic snapshots, `restic forget --dry-run` with the same rules.
describe("prune with daily, weekly and monthly rules", () => {
  /** Ids at these many hours ago: dense lately, sparser further back, two on some days. */
  const hoursAgo = [1, 5, 26, 30, 49, 75, 98, 122, 150, 170, 200, 230, 300, 340, 400, 500, 600, 700, 900, 1100, 1400, 1700, 2200, 2900, 3600, 4500, 5800, 7000, 8800, 10000];

  function idAt(hours: number): string {
    const d = new Date(Date.now() - hours * 3_600_000);
    const pad = (n: number) => String(n).padStart(2, "0");
    return `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}_${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`;
  }

  // Days, weeks and months in the stack's time zone (one far from UTC, so that the UTC ids
  // fall on other local days).
  it.each([["Pacific/Auckland", { daily: 4, weekly: 5, monthly: 12 }]])("keeps exactly what restic's forget keeps (TZ %s, %j)", async (tz, keep) => {
    const dir = fs.mkdtempSync(path.join(world.root, "gfs-"));
    const ids = [...new Set(hoursAgo.map(idAt))];
    for (const id of ids) await mustRun("cp", ["-al", path.join(world.backupDir, template), path.join(dir, id)]);

    const repo = fs.mkdtempSync(path.join(world.root, "gfs-restic-"));
    const source = fs.mkdtempSync(path.join(world.root, "gfs-src-"));
    fs.writeFileSync(path.join(source, "f"), "x");
    const restic = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: "oracle", TZ: tz, RESTIC_CACHE_DIR: path.join(repo, ".cache") };
    await mustRun("restic", ["init", "-q"], { env: restic });
    for (const id of ids) {
      // The id's UTC time, given to restic in TZ's local time (it reads --time as local).
      const utc = `${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)} ${id.slice(9, 11)}:${id.slice(11, 13)}:${id.slice(13, 15)} UTC`;
      const local = (await mustRun("date", ["-d", utc, "+%Y-%m-%d %H:%M:%S"], { env: { TZ: tz } })).trim();
      await mustRun("restic", ["backup", "-q", "--host", "h", "--tag", id, "--time", local, source], { env: restic });
    }
    const forget = JSON.parse(
      await mustRun("restic", ["forget", "--dry-run", "--json", "--group-by", "host", "--keep-last", "1", "--keep-daily", String(keep.daily), "--keep-weekly", String(keep.weekly), "--keep-monthly", String(keep.monthly)], { env: restic }),
    ) as { keep: { tags: string[] }[]; remove: { tags: string[] }[] | null }[];
    const resticKeeps = forget[0].keep.map((s) => s.tags[0]).sort();
    expect(resticKeeps.length).toBeGreaterThan(keep.daily);
    expect(resticKeeps.length).toBeLessThan(ids.length);

    const env = { EDMS_BACKUP_DIR: dir, TZ: tz, EDMS_BACKUP_KEEP_LAST: "1", EDMS_BACKUP_RETENTION_DAYS: "0", EDMS_BACKUP_KEEP_DAILY: String(keep.daily), EDMS_BACKUP_KEEP_WEEKLY: String(keep.weekly), EDMS_BACKUP_KEEP_MONTHLY: String(keep.monthly) };
    const dry = await world.edms(["prune", "--dry-run"], { env });
    expect(dry.code, dry.stderr).toBe(0);
    const lines = dry.stdout.trim().split("\n");
    expect(lines.filter((l) => l.startsWith("keep ")).map((l) => l.split(" ")[1]).sort()).toEqual(resticKeeps);
    expect(lines.filter((l) => l.startsWith("would delete ")).map((l) => l.split(" ")[2]).sort()).toEqual(ids.filter((id) => !resticKeeps.includes(id)).sort());
    expect(lines[0]).toMatch(/^keep \d{8}_\d{6} \(last 1, daily 1, weekly 1, monthly 1\)$/);

    const pruned = await world.edms(["prune"], { env });
    expect(pruned.code).toBe(0);
    expect(listDir(dir).filter((n) => !n.startsWith("."))).toEqual(resticKeeps);
  });
});
