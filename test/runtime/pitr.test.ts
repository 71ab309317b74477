import { type ChildProcess, spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { snapshotTree } from "../support/fixtures";
import { dbFingerprint, freePort } from "../support/pg";
import { edmsBackup, lastLine, mustRun, run } from "../support/run";
import { makeWorld, type World } from "../support/world";

// Point-in-time recovery against a real cluster: the receiver streams through a slot (its
// role has REPLICATION only), a writer commits rows that name documents it writes first,
// and restores go to times between two commits.

const pgBin = "/usr/lib/postgresql/15/bin";
let world: World;
let replEnv: Record<string, string>;
let receiver: ChildProcess | undefined;
let receiverLog = "";
let proxy: Proxy;

/** A row the writer committed: its document, and when the commit was sent and answered. */
interface Commit {
  n: number;
  name: string;
  sha: string;
  before: number;
  after: number;
}
const commits: Commit[] = [];
let docsDir: string;

/** A TCP proxy to the cluster that can cut the network: connections dropped, new ones refused. */
interface Proxy {
  port: number;
  cut(on: boolean): void;
  close(): void;
}

async function startProxy(target: number): Promise<Proxy> {
  const port = await freePort();
  const sockets = new Set<net.Socket>();
  let cut = false;
  const server = net.createServer((client) => {
    if (cut) return client.destroy();
    const upstream = net.connect(target, "127.0.0.1");
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(a);
      a.on("data", (d) => b.write(d));
      a.on("close", () => { sockets.delete(a); b.destroy(); });
      a.on("error", () => b.destroy());
    }
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return {
    port,
    cut(on) {
      cut = on;
      if (on) for (const s of sockets) s.destroy();
    },
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

function startReceiver(): void {
  receiverLog = "";
  receiver = spawn(edmsBackup, ["wal", "receive"], { env: { ...(process.env as Record<string, string>), ...replEnv }, stdio: ["ignore", "pipe", "pipe"] });
  receiver.stderr!.on("data", (d) => (receiverLog += d));
}

async function stopReceiver(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
  const child = receiver!;
  receiver = undefined;
  if (child.exitCode !== null) return child.exitCode;
  // "exit", not "close": a killed receiver's pg_receivewal may hold the pipes a moment longer.
  const done = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  child.kill(signal);
  return done;
}

/** One writer step: a document written, then the row naming it committed. */
async function commitOne(): Promise<Commit> {
  const n = commits.length + 1;
  const name = `doc-${n}.bin`;
  const body = crypto.randomBytes(2048 + n);
  fs.writeFileSync(path.join(docsDir, name), body);
  const sha = crypto.createHash("sha256").update(body).digest("hex");
  const before = Date.now();
  await world.cluster.psql(`INSERT INTO pitr_docs (n, name, sha) VALUES (${n}, '${name}', '${sha}')`);
  const commit = { n, name, sha, before, after: Date.now() };
  commits.push(commit);
  return commit;
}

async function writeFor(ms: number, gap = 250): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    await commitOne();
    await sleep(gap);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A time between commit i (1-based) and the next, as restore --to takes it. */
function between(i: number): string {
  const t = (commits[i - 1].after + commits[i].before) / 2;
  return new Date(t).toISOString();
}

/** The state a restore to between(i) must give: rows 1..i, and their documents byte-identical. */
async function expectStateAt(i: number, where: string): Promise<void> {
  const rows = (await world.cluster.psql("SELECT n || ' ' || name || ' ' || sha FROM pitr_docs ORDER BY n")).trim().split("\n").filter(Boolean);
  expect(rows, where).toEqual(commits.slice(0, i).map((c) => `${c.n} ${c.name} ${c.sha}`));
  for (const c of commits.slice(0, i)) {
    const file = path.join(docsDir, c.name);
    expect(fs.existsSync(file), `${where}: ${c.name}`).toBe(true);
    expect(crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex"), `${where}: ${c.name}`).toBe(c.sha);
  }
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, seconds = 60): Promise<void> {
  for (let i = 0; i < seconds * 4; i++) {
    if (await check()) return;
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}; receiver said:\n${receiverLog}`);
}

/** Until the receiver says the WAL is complete up to now. */
async function walCaughtUp(): Promise<void> {
  const now = Date.now() / 1000;
  await waitFor("the WAL to be received", () => {
    const file = path.join(world.backupDir, "pitr", "wal", ".received");
    return fs.existsSync(file) && Number(fs.readFileSync(file, "utf8")) > now;
  });
}

beforeAll(async () => {
  world = await makeWorld();
  await world.cluster.psql("CREATE ROLE edms_repl LOGIN REPLICATION PASSWORD 'repl pw'; ALTER SYSTEM SET wal_sender_timeout = '5s'; SELECT pg_reload_conf();", "postgres");
  await world.cluster.psql("CREATE TABLE pitr_docs (n int PRIMARY KEY, name text NOT NULL, sha text NOT NULL)");
  docsDir = path.join(world.storage[0], "pitr");
  fs.mkdirSync(docsDir);
  proxy = await startProxy(world.cluster.port);
  replEnv = { ...world.env, PGUSER: "edms_repl", PGPASSWORD: "repl pw", PGPORT: String(proxy.port), EDMS_BACKUP_STACK: "test" };
  startReceiver();
  await mustRun(edmsBackup, ["basebackup"], { env: replEnv });
  await walCaughtUp();
});

afterAll(async () => {
  if (receiver) await stopReceiver("SIGKILL");
  proxy?.close();
  await world?.cleanup();
});

describe("point-in-time recovery", () => {
  it("restores to a time between two commits: exactly the rows committed by then, every document they name byte-identical, later files kept as extra", { timeout: 300_000 }, async () => {
    await writeFor(3000);
    const taken = commits.length;
    const point = lastLine(await mustRun(edmsBackup, ["storage-point"], { env: world.env }));
    await writeFor(3000);
    await walCaughtUp();
    // Before the storage point: that point is used, and the documents written after the time
    // (up to the point) are extra.
    const target = taken - 2;
    const all = [...commits];
    const r = await world.edms(["restore", "--to", between(target), "--yes"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/last transaction at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\+00:00/);
    expect(r.stdout).toContain(`storage point ${point}`);
    expect(r.stdout).toMatch(/extra, kept: \d+ file\(s\) newer than the time/);
    const reached = Date.parse(r.stdout.match(/last transaction at (\S+ \S+)/)![1].replace(" ", "T").replace("+00:00", "Z"));
    expect(reached).toBeGreaterThanOrEqual(all[target - 1].before - 5);
    expect(reached).toBeLessThanOrEqual(all[target - 1].after + 5);
    await expectStateAt(target, "restored before the storage point");
    // Documents of later rows that the point held are there, as extra files, not lost.
    const later = all.filter((c) => c.n > target && fs.existsSync(path.join(docsDir, c.name)));
    expect(later.length).toBeGreaterThan(0);
    // The receiver goes on across the restore (it is the same cluster, the same timeline).
    commits.splice(target);
    await writeFor(2000);
    await walCaughtUp();
    // After every storage point: one is taken at the restore; the rows up to the time only.
    const last = commits.length - 1;
    const again = await world.edms(["restore", "--to", between(last), "--yes"]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain("taking one now");
    await expectStateAt(last, "restored after the last storage point");
    commits.splice(last);
  });

  it("keeps every WAL record across a killed receiver, a database restart and a cut network: no gap, and restores reach times inside each outage", { timeout: 300_000 }, async () => {
    await writeFor(1500);
    // Killed: the slot keeps the WAL meanwhile; a new receiver takes it from there.
    await stopReceiver("SIGKILL");
    await writeFor(1500);
    const inKill = commits.length - 1;
    startReceiver();
    await walCaughtUp();
    // The database restarted under the receiver.
    // (-l: without it the server would keep pg_ctl's stdout, and this call, open.)
    await mustRun("runuser", ["-u", "postgres", "--", `${pgBin}/pg_ctl`, "-D", path.join(world.cluster.dir, "data"), "-l", path.join(world.cluster.dir, "log"), "-m", "fast", "-w", "restart"]);
    await writeFor(1500);
    // The network cut for a while: connections dropped, new ones refused.
    proxy.cut(true);
    await writeFor(4000);
    const inCut = commits.length - 1;
    proxy.cut(false);
    await writeFor(1000);
    await walCaughtUp();
    const status = await world.edms(["wal", "status"], { env: replEnv });
    expect(status.code, status.stdout + status.stderr).toBe(0);
    expect(status.stdout).toContain("gaps: none");
    expect(status.stdout).toMatch(/receiver: running/);
    expect(receiverLog).toMatch(/lost the connection|server closed|terminating|could not receive|unreachable|Connection refused|connection/i);
    for (const i of [inKill, inCut]) {
      const r = await world.edms(["restore", "--to", between(i), "--yes"]);
      expect(r.code, r.stderr).toBe(0);
      await expectStateAt(i, `restored to commit ${i}`);
    }
    commits.splice(inCut);
  });

  it("refuses in one line, changing nothing: not a time, before the oldest base backup, after the WAL received, a gap, a timeline it cannot follow", { timeout: 300_000 }, async () => {
    await writeFor(1000);
    await walCaughtUp();
    const refused = async (time: string, pattern: RegExp) => {
      const fp = await dbFingerprint(world.env, "edms");
      const tree = snapshotTree(world.storage[0]);
      const r = await world.edms(["restore", "--to", time, "--yes"]);
      expect(r.code, time).not.toBe(0);
      const lines = r.stderr.trim().split("\n");
      expect(lines[lines.length - 1], time).toMatch(pattern);
      expect(await dbFingerprint(world.env, "edms")).toEqual(fp);
      expect(snapshotTree(world.storage[0])).toEqual(tree);
    };
    await refused("yesterday", /^edms-backup restore: --to 'yesterday' is not a time: give 'YYYY-MM-DD HH:MM:SS'/);
    await refused("2020-01-01 00:00:00", /is before the oldest base backup: the earliest time a restore can reach is \d{4}-/);
    await refused(new Date(Date.now() + 3_600_000).toISOString(), /is in the future/);
    // The receiver stopped: a time after its last WAL is refused, naming how far it got.
    expect(await stopReceiver()).toBe(0);
    expect(receiverLog).toMatch(/stopped; WAL received up to/);
    await writeFor(2500);
    await refused(between(commits.length - 1), /is after the newest WAL received: WAL received up to \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(the receiver is not running/);
    // A segment gone from the middle: a gap.
    startReceiver();
    for (let k = 0; k < 3; k++) {
      await commitOne();
      await world.cluster.psql("SELECT pg_switch_wal()");
    }
    await walCaughtUp();
    const wal = path.join(world.backupDir, "pitr", "wal");
    const full = fs.readdirSync(wal).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort();
    expect(full.length).toBeGreaterThan(2);
    const hidden = path.join(world.root, "hidden-segment");
    fs.renameSync(path.join(wal, full[full.length - 2]), hidden);
    // A time after the segment before the gap was last written (its mtime), and received.
    await sleep(1500);
    await walCaughtUp();
    await refused(new Date(Date.now() - 300).toISOString(), /the WAL has a gap after .*segment\(s\) missing after [0-9A-F]{24}\): restore to a time before that, or take a base backup/);
    const gapStatus = await world.edms(["wal", "status"], { env: replEnv });
    expect(gapStatus.code).not.toBe(0);
    expect(gapStatus.stdout).toContain("1 segment(s) missing after");
    fs.renameSync(hidden, path.join(wal, full[full.length - 2]));
    // A timeline the WAL switches to without its history file.
    const fake = path.join(wal, `00000009${full[full.length - 1].slice(8)}`);
    fs.copyFileSync(path.join(wal, full[full.length - 1]), fake);
    await refused(new Date(Date.now() - 1000).toISOString(), /switches to timeline 9 after base backup \d+_\d+ but its history file 00000009.history is not in/);
    fs.rmSync(fake);
  });

  it("takes base backups that pg_verifybackup checks, names a missing REPLICATION attribute, and ends the receiver cleanly on SIGTERM", { timeout: 120_000 }, async () => {
    const id = lastLine(await mustRun(edmsBackup, ["basebackup"], { env: replEnv }));
    const base = path.join(world.backupDir, "pitr", "base", id);
    expect((await run(`${pgBin}/pg_verifybackup`, ["--quiet", path.join(base, "data")])).code).toBe(0);
    expect(fs.readFileSync(path.join(base, "info"), "utf8")).toMatch(/^end_lsn=[0-9A-F]+\/[0-9A-F]+$/m);
    await world.cluster.psql("CREATE ROLE edms_plain LOGIN PASSWORD 'plain pw'", "postgres");
    const r = await world.edms(["basebackup"], { env: { ...replEnv, PGUSER: "edms_plain", PGPASSWORD: "plain pw" } });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^edms-backup basebackup: role edms_plain may not stream the WAL: give it the attribute with "ALTER ROLE edms_plain REPLICATION"/);
    expect(fs.readdirSync(path.join(world.backupDir, "pitr", "base")).filter((n) => n.startsWith("."))).toEqual([]);
    const code = await stopReceiver();
    expect(code).toBe(0);
    startReceiver();
    await walCaughtUp();
  });

  it("stopped at each step of a restore to a time (killed with its group, or alone with the scratch cluster left running): the old or the restored state, and the same command again finishes it", { timeout: 900_000 }, async () => {
    await walCaughtUp();
    const first = commits.length + 1;
    await writeFor(6000, 200);
    await walCaughtUp();
    const hook = path.join(world.root, "pitr-hook");
    fs.writeFileSync(hook, `#!/usr/bin/env bash
[[ "$1" == "$EDMS_TEST_AT" ]] || exit 0
case "$EDMS_TEST_DO" in
  kill-group) read -r _ _ _ _ pgid _ </proc/"$2"/stat; kill -KILL -- -"$pgid" ;;
  kill-main) kill -KILL "$2" ;;
esac
`, { mode: 0o755 });
    const rows = async () => Number(await world.cluster.psql("SELECT count(*) FROM pitr_docs WHERE n >= " + first));
    const rounds: [string, "kill-group" | "kill-main"][] = [
      ["restore.pitr.scratch-ready", "kill-group"], ["restore.pitr.recovered", "kill-main"], ["backup.dump-started", "kill-group"],
      ["restore.pitr.backup-made", "kill-group"], ["journal.staged", "kill-group"], ["database.swapped", "kill-group"], ["storage.1.moved-aside", "kill-main"],
    ];
    // Each round to an earlier time than the one before: the state changes every time.
    let i = commits.length - 1;
    expect(i - rounds.length).toBeGreaterThan(first);
    for (const [step, action] of rounds) {
      const time = between(i);
      const where = `${action} at ${step}, restoring to commit ${i}`;
      const before = await rows();
      const env = { ...(process.env as Record<string, string>), ...world.env, EDMS_BACKUP_STEP_HOOK: hook, EDMS_TEST_AT: step, EDMS_TEST_DO: action };
      const child = spawn(edmsBackup, ["restore", "--to", time, "--yes"], { env, detached: true, stdio: "ignore" });
      const code = await new Promise<number | null>((r) => child.on("close", (c) => r(c)));
      expect(code, where).not.toBe(0);
      await waitFor("the killed restore's lock", async () => (await run("flock", ["-n", path.join(world.backupDir, ".lock"), "true"])).code === 0);
      expect([before, i - first + 1], where).toContain(await rows());
      const again = await world.edms(["restore", "--to", time, "--yes"]);
      expect(again.code, `${where}: ${again.stderr}`).toBe(0);
      await expectStateAt(i, where);
      // Nothing of the scratch cluster is left: no process, no folder, no record.
      expect((await run("pgrep", ["-f", "edms-pitr\\."])).stdout, where).toBe("");
      expect(fs.readdirSync("/var/tmp").filter((n) => n.startsWith("edms-pitr.")), where).toEqual([]);
      expect(fs.existsSync(path.join(world.backupDir, "pitr", ".scratch")), where).toBe(false);
      i--;
    }
    commits.splice(i + 1);
  });

  it("runs in the scheduler: the receiver beside the loop as the replication role, a first base backup at start, and a clean stop on SIGTERM", { timeout: 120_000 }, async () => {
    const dir = path.join(world.root, "scheduled");
    const env = {
      ...(process.env as Record<string, string>), ...world.env, EDMS_BACKUP_DIR: dir, EDMS_BACKUP_STACK: "sched", EDMS_BACKUP_SCHEDULE: "0 3 1 1 *",
      EDMS_BACKUP_DRILL_SCHEDULE: "", EDMS_BACKUP_PITR: "true", EDMS_BACKUP_PITR_PGUSER: "edms_repl", EDMS_BACKUP_PITR_PGPASSWORD: "repl pw",
    };
    const scheduler = spawn(edmsBackup, ["schedule"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    scheduler.stdout!.on("data", (d) => (out += d));
    scheduler.stderr!.on("data", (d) => (out += d));
    await waitFor("the scheduler's base backup and receiver", () => /basebackup: ok/.test(out) && fs.existsSync(path.join(dir, "pitr", "wal", ".received")));
    // The slot is the receiver's own, made as the replication role.
    expect(await world.cluster.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'edms_backup_sched' AND active", "postgres")).toBe("1\n");
    const status = await world.edms(["status"], { env: { EDMS_BACKUP_DIR: dir } });
    expect(status.stdout).toMatch(/point in time: WAL received up to \d{4}-.*, receiver running; base backups 1/);
    const exited = new Promise<number | null>((r) => scheduler.on("exit", (code) => r(code)));
    scheduler.kill("SIGTERM");
    expect(await exited).toBe(0);
    await waitFor("the receiver to stop", () => /wal: stopped; WAL received up to/.test(out));
    await world.cluster.psql("SELECT pg_drop_replication_slot('edms_backup_sched')", "postgres");
  });

  it("copies the WAL and the base backups off-site (wal push, also from the receiver), tagged with up to when the WAL is complete; offsite prune keeps the newest three", { timeout: 180_000 }, async () => {
    const repo = path.join(world.root, "offsite-repo");
    const offsite = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: "offsite pw", EDMS_BACKUP_STACK: "test" };
    const restic = async (...args: string[]) => JSON.parse(await mustRun("restic", ["--no-cache", "--json", ...args], { env: offsite }));
    await walCaughtUp();
    for (let k = 0; k < 4; k++) {
      await commitOne();
      const pushed = await world.edms(["wal", "push"], { env: offsite });
      expect(pushed.code, pushed.stderr).toBe(0);
    }
    const snaps = await restic("snapshots", "--tag", "edms-backup-pitr");
    expect(snaps.length).toBe(4);
    const received = Number(snaps[3].tags.find((t: string) => t.startsWith("received=")).slice("received=".length));
    expect(received).toBeGreaterThan(Date.now() / 1000 - 60);
    const files = (await mustRun("restic", ["--no-cache", "ls", snaps[3].id], { env: offsite })).split("\n");
    const wal = fs.readdirSync(path.join(world.backupDir, "pitr", "wal")).filter((n) => /^[0-9A-F]{24}(\.partial)?$/.test(n));
    for (const name of wal) expect(files, name).toContain(`/wal/${name}`);
    expect(files.some((f) => /^\/base\/\d{8}_\d{6}\/data\/PG_VERSION$/.test(f))).toBe(true);
    expect(files.some((f) => f.includes(".receiver"))).toBe(false);
    const pruned = await world.edms(["offsite", "prune"], { env: offsite });
    expect(pruned.code, pruned.stderr).toBe(0);
    expect((await restic("snapshots", "--tag", "edms-backup-pitr")).map((x: { id: string }) => x.id)).toEqual(snaps.slice(1).map((x: { id: string }) => x.id));
    // The receiver pushes when it starts (and every EDMS_BACKUP_WAL_OFFSITE_MINUTES).
    await stopReceiver();
    const before = (await restic("snapshots", "--tag", "edms-backup-pitr")).length;
    receiverLog = "";
    receiver = spawn(edmsBackup, ["wal", "receive"], { env: { ...(process.env as Record<string, string>), ...replEnv, ...offsite }, stdio: ["ignore", "pipe", "pipe"] });
    receiver.stderr!.on("data", (d) => (receiverLog += d));
    await waitFor("the receiver's push", async () => (await restic("snapshots", "--tag", "edms-backup-pitr")).length > before);
    await stopReceiver();
    startReceiver();
    await walCaughtUp();
  });

  it("deletes base backups past EDMS_BACKUP_PITR_KEEP_DAYS but the newest of them, and the WAL and storage points only they needed", { timeout: 120_000 }, async () => {
    const baseDir = path.join(world.backupDir, "pitr", "base");
    const age = (id: string, days: number) => {
      const info = path.join(baseDir, id, "info");
      const end = Math.floor(Date.now() / 1000) - days * 86400;
      fs.writeFileSync(info, fs.readFileSync(info, "utf8").replace(/^end_time=\d+$/m, `end_time=${end}`));
    };
    // The base backups so far "twenty days old", three more "ten, nine and eight", then a
    // new one with a one-day window.
    for (const id of fs.readdirSync(baseDir).filter((n) => /^\d{8}_\d{6}$/.test(n))) age(id, 20);
    const olds: string[] = [];
    for (const days of [10, 9, 8]) {
      await commitOne();
      await world.cluster.psql("SELECT pg_switch_wal()");
      await walCaughtUp();
      const id = lastLine(await mustRun(edmsBackup, ["basebackup"], { env: replEnv }));
      age(id, days);
      olds.push(id);
      await sleep(1100);
    }
    await mustRun(edmsBackup, ["storage-point"], { env: world.env });
    const points = fs.readdirSync(path.join(world.backupDir, "pitr", "points")).filter((n) => /^\d{8}_\d{6}$/.test(n)).sort();
    const kept = olds[2];
    const keptStart = fs.readFileSync(path.join(baseDir, kept, "info"), "utf8").match(/^start_lsn=(\S+)$/m)![1];
    const r = await world.edms(["basebackup"], { env: { ...replEnv, EDMS_BACKUP_PITR_KEEP_DAYS: "1" } });
    expect(r.code, r.stderr).toBe(0);
    const now = fs.readdirSync(baseDir).filter((n) => /^\d{8}_\d{6}$/.test(n)).sort();
    // Every base older than the window went, but the newest of them (8 days): it reaches the window's start.
    expect(now).toEqual([kept, lastLine(r.stdout)]);
    for (const id of olds.slice(0, 2)) expect(fs.existsSync(path.join(baseDir, id))).toBe(false);
    // No WAL segment before the kept base's start is left; none from it on went.
    const [hi, lo] = keptStart.split("/").map((x) => parseInt(x, 16));
    const firstSeg = Math.floor((hi * 2 ** 32 + lo) / 16777216);
    const segs = fs.readdirSync(path.join(world.backupDir, "pitr", "wal")).filter((n) => /^[0-9A-F]{24}$/.test(n)).map((n) => parseInt(n.slice(8, 16), 16) * 256 + parseInt(n.slice(16, 24), 16));
    expect(Math.min(...segs)).toBe(firstSeg);
    // Storage points before it went, the newest point stays.
    const left = fs.readdirSync(path.join(world.backupDir, "pitr", "points")).filter((n) => /^\d{8}_\d{6}$/.test(n)).sort();
    expect(left).toContain(points[points.length - 1]);
    // And a restore to a time inside the window still works.
    await writeFor(1500);
    await walCaughtUp();
    const i = commits.length - 1;
    const restored = await world.edms(["restore", "--to", between(i), "--yes"]);
    expect(restored.code, restored.stderr).toBe(0);
    await expectStateAt(i, "restored after a prune");
    commits.splice(i);
  });

  it("drills a point in time: the state at a time restored beside the live data and checked, the live data untouched, the backup made for it deleted", { timeout: 180_000 }, async () => {
    await writeFor(1500);
    await walCaughtUp();
    const i = commits.length - 1;
    const fp = await dbFingerprint(world.env, "edms");
    const before = fs.readdirSync(world.backupDir).filter((n) => /^\d{8}_\d{6}$/.test(n)).sort();
    const r = await world.edms(["drill", "--to", between(i)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Drill of the state at .* \(last transaction at \d{4}-/m);
    expect(r.stdout).toMatch(/tables with every row as in the manifest/);
    expect(await dbFingerprint(world.env, "edms")).toEqual(fp);
    expect(fs.readdirSync(world.backupDir).filter((n) => /^\d{8}_\d{6}$/.test(n)).sort()).toEqual(before);
    const bad = await world.edms(["drill", "--to", "2020-01-01 00:00:00"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/is before the oldest base backup/);
  });
});
