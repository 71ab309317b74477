import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { snapshotTree } from "../support/fixtures";
import { startSshd, startSwift, type Store } from "../support/offsite";
import { dbFingerprint, startCluster, type Cluster } from "../support/pg";
import { lastLine, mustRun, run, type RunResult } from "../support/run";
import { listDir, makeWorld, type World } from "../support/world";

// Off-site copies with restic, against real servers the tests start: OpenStack Swift's
// s3api over TLS (its CA made by the test bed) and OpenSSH's sftp on loopback. Every tool
// gets its own repository, password, credentials and CA from here, nothing from the machine.

let world: World;
let swift: Store;
let sshd: Store;
let repoNo = 0;

beforeAll(async () => {
  [world, swift, sshd] = await Promise.all([makeWorld(), startSwift(), startSshd()]);
  // Documents restic must carry: one large, and one with a marker that must never be readable off-site.
  fs.writeFileSync(path.join(world.storage[0], "scan.bin"), crypto.randomBytes(3 << 20));
  fs.writeFileSync(path.join(world.storage[0], "contract.txt"), "PLAINTEXT-MARKER-7f3a9c contract text\n");
}, 180_000);
afterAll(async () => {
  await Promise.all([world?.cleanup(), swift?.stop(), sshd?.stop()]);
});

/** A fresh S3 repository (its own bucket) and backup folder: what a stack's scheduler gets. */
function s3Repo(stack = "prod"): Record<string, string> {
  const n = ++repoNo;
  return {
    RESTIC_REPOSITORY: `s3:${swift.env.S3_ENDPOINT}/edms-${n}`,
    RESTIC_PASSWORD: `repo password ${n}`,
    AWS_ACCESS_KEY_ID: swift.env.AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: swift.env.AWS_SECRET_ACCESS_KEY,
    AWS_DEFAULT_REGION: swift.env.AWS_DEFAULT_REGION,
    RESTIC_CACERT: swift.env.RESTIC_CACERT,
    EDMS_BACKUP_STACK: stack,
    EDMS_BACKUP_DIR: path.join(world.root, `backups-${n}`),
  };
}

function sftpRepo(): Record<string, string> {
  const n = ++repoNo;
  return {
    RESTIC_REPOSITORY: `${sshd.env.SFTP_BASE}/repo-${n}`,
    RESTIC_PASSWORD: `repo password ${n}`,
    EDMS_BACKUP_OFFSITE_SSH_KEY: sshd.env.EDMS_BACKUP_OFFSITE_SSH_KEY,
    EDMS_BACKUP_OFFSITE_KNOWN_HOSTS: sshd.env.EDMS_BACKUP_OFFSITE_KNOWN_HOSTS,
    EDMS_BACKUP_STACK: "prod",
    EDMS_BACKUP_DIR: path.join(world.root, `backups-${n}`),
  };
}

/** Bytes restic says a backup added to the repository ("... is off-site: N KiB added"). */
function added(result: RunResult): number {
  const m = /is off-site: (\d+) (B|KiB|MiB|GiB) added/.exec(result.stderr);
  expect(m, result.stderr).not.toBeNull();
  return Number(m![1]) * { B: 1, KiB: 1024, MiB: 1 << 20, GiB: 1 << 30 }[m![2] as "B"];
}

async function backup(env: Record<string, string>): Promise<RunResult & { id: string }> {
  const result = await world.edms(["backup"], { env });
  return { ...result, id: lastLine(result.stdout) };
}

describe("off-site copies over S3 (Swift s3api, TLS)", () => {
  it("a backup goes off-site, encrypted, tagged with its id and stack; the next night adds only what changed", async () => {
    const env = s3Repo();
    const first = await backup(env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/initialising the off-site repository s3:https:\/\/127\.0\.0\.1:\d+\/edms-\d+/);
    const list = await world.edms(["offsite", "list"], { env });
    expect(list.stdout.trim().split("\n").map((l) => l.split(/\s+/)[0])).toEqual([first.id]);
    expect((await world.edms(["list"], { env })).stdout).toMatch(new RegExp(`^${first.id} .* off-site$`, "m"));
    const tags = await mustRun("restic", ["--cacert", env.RESTIC_CACERT, "--no-cache", "snapshots", "--json"], { env });
    expect(JSON.parse(tags)[0].tags).toEqual(expect.arrayContaining(["edms-backup", "stack=prod", `id=${first.id}`]));
    expect(JSON.parse(tags)[0].hostname).toBe("edms-prod");

    fs.appendFileSync(path.join(world.storage[1], "notes.txt"), "one more line\n");
    const second = await backup(env);
    expect(second.code, second.stderr).toBe(0);
    // The first carried the 3 MiB scan; the second only the dump's changes and one file.
    expect(added(first)).toBeGreaterThan(3 << 20);
    expect(added(second)).toBeLessThan(256 << 10);
  });

  it("the local folder destroyed: a restore by id onto an empty instance pulls it and is byte-identical", async () => {
    const env = s3Repo();
    const taken = await backup(env);
    expect(taken.code, taken.stderr).toBe(0);
    const storage = world.storage.map(snapshotTree);
    const db = await dbFingerprint(world.env, "edms");
    fs.rmSync(env.EDMS_BACKUP_DIR, { recursive: true });
    fs.mkdirSync(env.EDMS_BACKUP_DIR);

    // The new VM: an empty PostgreSQL, empty storage folders, the same repository settings.
    const target: Cluster = await startCluster();
    const folders = world.storage.map((_, i) => path.join(world.root, `new-vm-${repoNo}`, `storage-${i}`));
    folders.forEach((dir) => fs.mkdirSync(dir, { recursive: true }));
    try {
      const restored = await world.edms(["restore", taken.id, "--yes"], { env: { ...env, ...target.env, EDMS_BACKUP_STORAGE_DIRS: folders.join(":") } });
      expect(restored.code, restored.stderr).toBe(0);
      expect(restored.stderr).toMatch(/pulling it from the off-site repository first/);
      expect(await dbFingerprint(target.env, "edms")).toEqual(db);
      folders.forEach((dir, i) => expect(snapshotTree(dir)).toEqual(storage[i]));
      expect((await world.edms(["verify", taken.id], { env })).code).toBe(0);
      expect(listDir(env.EDMS_BACKUP_DIR).filter((n) => n.startsWith(".tmp"))).toEqual([]);
    } finally {
      await target.stop();
    }
  });

  it("repository down during a backup: the local backup is complete and listed, the exit names the off-site failure; the next run catches up", async () => {
    const env = s3Repo();
    expect((await backup(env)).code).toBe(0);
    const down = await backup({ ...env, RESTIC_REPOSITORY: env.RESTIC_REPOSITORY.replace(/:\d+\//, ":1/") });
    expect(down.code).not.toBe(0);
    expect(down.stdout.trim().split("\n").pop()).toBe(down.id);
    expect(down.stderr.trim().split("\n").pop()).toMatch(/off-site repository .* is unreachable .*connection refused.*check the server, the network and RESTIC_REPOSITORY/);
    expect((await world.edms(["verify", down.id], { env })).code).toBe(0);
    expect((await world.edms(["list"], { env })).stdout).toMatch(new RegExp(`^${down.id} .*storage [^ ]+ [^ ]+$`, "m"));
    expect((await world.edms(["status"], { env })).stdout).toMatch(/off-site: .*last failure .* is unreachable/);

    const next = await backup(env);
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toMatch(new RegExp(`copying backup ${down.id} off-site[\\s\\S]*copying backup ${next.id} off-site`));
    const ids = (await world.edms(["offsite", "list"], { env })).stdout.trim().split("\n").map((l) => l.split(/\s+/)[0]);
    expect(ids.slice(0, 2)).toEqual([next.id, down.id]);
  });

  it("a wrong password is refused with one line and never re-initialises the repository", async () => {
    const env = s3Repo();
    const taken = await backup(env);
    expect(taken.code).toBe(0);
    const config = await mustRun("restic", ["--cacert", env.RESTIC_CACERT, "--no-cache", "cat", "config"], { env });
    const wrong = await world.edms(["offsite", "list"], { env: { ...env, RESTIC_PASSWORD: "not it" } });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr.trim().split("\n")).toEqual([expect.stringMatching(/wrong password for the off-site repository .*set RESTIC_PASSWORD/)]);
    const nightly = await backup({ ...env, RESTIC_PASSWORD: "not it" });
    expect(nightly.code).not.toBe(0);
    expect(nightly.stderr.trim().split("\n").pop()).toMatch(/wrong password/);
    expect(await mustRun("restic", ["--cacert", env.RESTIC_CACERT, "--no-cache", "cat", "config"], { env })).toBe(config);
    expect(nightly.stderr + wrong.stderr).not.toContain(env.RESTIC_PASSWORD);
  });

  it("a repository this stack used that is now missing (another bucket) is an error, never a new repository", async () => {
    const env = s3Repo();
    expect((await backup(env)).code).toBe(0);
    const elsewhere = { ...env, RESTIC_REPOSITORY: `${env.RESTIC_REPOSITORY}-typo` };
    const result = await world.edms(["offsite", "push"], { env: elsewhere });
    expect(result.code).not.toBe(0);
    expect(result.stderr.trim().split("\n")).toEqual([expect.stringMatching(/off-site repository .*-typo is missing, but this stack's backups went to repository [0-9a-f]{8} there/)]);
    const probe = await run("restic", ["--cacert", env.RESTIC_CACERT, "--no-cache", "cat", "config"], { env: elsewhere });
    expect(probe.code).not.toBe(0);
  });

  it("GFS retention keeps exactly the expected snapshots, only this stack's, never the newest", async () => {
    const env = s3Repo("gfs");
    const other = { ...env, EDMS_BACKUP_STACK: "other", EDMS_BACKUP_DIR: `${env.EDMS_BACKUP_DIR}-other` };
    const model = await backup(other);
    expect(model.code, model.stderr).toBe(0);
    // Backups of other days: copies of one under the ids of those days (hard links).
    const days = ["20260215", "20260315", "20260410", "20260420", "20260426", "20260428", "20260429", "20260430"].map((d) => `${d}_020000`);
    fs.mkdirSync(env.EDMS_BACKUP_DIR);
    for (const id of days) await mustRun("cp", ["-al", path.join(other.EDMS_BACKUP_DIR, model.id), path.join(env.EDMS_BACKUP_DIR, id)]);
    const push = await world.edms(["offsite", "push"], { env });
    expect(push.code, push.stderr).toBe(0);
    const keep = { EDMS_BACKUP_OFFSITE_KEEP_DAILY: "2", EDMS_BACKUP_OFFSITE_KEEP_WEEKLY: "2", EDMS_BACKUP_OFFSITE_KEEP_MONTHLY: "2" };
    // Daily: 04-30, 04-29; weekly (ISO weeks 18 and 17): 04-30, 04-26; monthly: 04-30, 03-15.
    const gone = ["20260215_020000", "20260410_020000", "20260420_020000", "20260428_020000"];
    const dry = await world.edms(["offsite", "prune", "--dry-run"], { env: { ...env, ...keep } });
    expect(dry.stdout.trim().split("\n")).toEqual(gone.map((id) => `would delete ${id}`));
    const pruned = await world.edms(["offsite", "prune"], { env: { ...env, ...keep } });
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout.trim().split("\n")).toEqual(gone.map((id) => `deleted ${id}`));
    const left = (await world.edms(["offsite", "list"], { env })).stdout.trim().split("\n").map((l) => l.split(/\s+/)[0]);
    expect(left).toEqual(["20260430_020000", "20260429_020000", "20260426_020000", "20260315_020000"]);
    // The other stack's snapshot in the same repository is untouched.
    expect((await world.edms(["offsite", "list"], { env: other })).stdout).toMatch(new RegExp(`^${model.id} `));
    // Keeping nothing still keeps the newest.
    const zero = { EDMS_BACKUP_OFFSITE_KEEP_DAILY: "0", EDMS_BACKUP_OFFSITE_KEEP_WEEKLY: "0", EDMS_BACKUP_OFFSITE_KEEP_MONTHLY: "0" };
    expect((await world.edms(["offsite", "prune"], { env: { ...env, ...zero } })).code).toBe(0);
    expect((await world.edms(["offsite", "list"], { env })).stdout.trim().split("\n").map((l) => l.split(/\s+/)[0])).toEqual(["20260430_020000"]);
  });
});

// Issue 32, findings 2, 3 and 8: read-only commands never create, every command checks the
// repository's id, and offsite prune counts days, weeks and months as prune does.
describe("a repository is created only by a backup or a push, and is always the remembered one", () => {
  it("a new VM with a mistyped repository: check, pull, list, prune and restore say 'no restic repository', create and remember nothing; fixed, the pull works", async () => {
    const env = s3Repo();
    const taken = await backup(env);
    expect(taken.code, taken.stderr).toBe(0);
    const newVm = { ...env, EDMS_BACKUP_DIR: path.join(world.root, `new-vm-backups-${repoNo}`), RESTIC_REPOSITORY: `${env.RESTIC_REPOSITORY}-typo` };
    fs.mkdirSync(newVm.EDMS_BACKUP_DIR);
    for (const args of [["offsite", "check"], ["offsite", "pull", taken.id], ["offsite", "list"], ["offsite", "prune", "--dry-run"], ["restore", taken.id, "--yes"]]) {
      const result = await world.edms(args, { env: newVm });
      expect(result.code, args.join(" ")).toBe(1);
      expect(result.stderr.trim().split("\n").pop(), args.join(" ")).toMatch(/: no restic repository at s3:https:\/\/127\.0\.0\.1:\d+\/edms-\d+-typo: check RESTIC_REPOSITORY/);
      expect(result.stderr, args.join(" ")).not.toMatch(/initialising/);
    }
    expect(listDir(newVm.EDMS_BACKUP_DIR).filter((n) => !["lock", ".lock", ".made"].includes(n))).toEqual([]);
    const probe = await run("restic", ["--cacert", env.RESTIC_CACERT, "--no-cache", "cat", "config"], { env: newVm });
    expect(probe.code).not.toBe(0);
    const pulled = await world.edms(["offsite", "pull", taken.id], { env: { ...newVm, RESTIC_REPOSITORY: env.RESTIC_REPOSITORY } });
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(listDir(newVm.EDMS_BACKUP_DIR)).toContain(taken.id);
  });

  it("list, check and pull against a re-initialised repository refuse, naming both ids, and keep the off-site marks", async () => {
    const env = { RESTIC_REPOSITORY: path.join(world.root, `local-repo-${++repoNo}`), RESTIC_PASSWORD: "local pw", EDMS_BACKUP_STACK: "prod", EDMS_BACKUP_DIR: path.join(world.root, `backups-${repoNo}`) };
    const taken = await backup(env);
    expect(taken.code, taken.stderr).toBe(0);
    const marks = fs.readFileSync(path.join(env.EDMS_BACKUP_DIR, ".offsite-ids"), "utf8");
    expect(marks).toContain(taken.id);
    fs.rmSync(env.RESTIC_REPOSITORY, { recursive: true });
    await mustRun("restic", ["init", "-q", "--cache-dir", path.join(world.root, "reinit-cache")], { env });
    for (const args of [["offsite", "list"], ["offsite", "check"], ["offsite", "pull", "20000101_000000"]]) {
      const result = await world.edms(args, { env });
      expect(result.code, args.join(" ")).toBe(1);
      expect(result.stderr.trim().split("\n"), args.join(" ")).toEqual([expect.stringMatching(/off-site repository .* is [0-9a-f]{8}, not [0-9a-f]{8} where this stack's backups went: fix RESTIC_REPOSITORY/)]);
    }
    expect(fs.readFileSync(path.join(env.EDMS_BACKUP_DIR, ".offsite-ids"), "utf8")).toBe(marks);
    expect((await world.edms(["list"], { env })).stdout).toMatch(new RegExp(`^${taken.id} .* off-site$`, "m"));
  });

  // The same ids in both, around the DST changes of Europe/Berlin and ISO week 53 of 2020
  // (28 December 2020 to 3 January 2021), and 23:30 UTC on 31 December (January in Berlin).
  it("offsite prune keeps exactly what prune keeps, days, weeks and months in TZ", async () => {
    const env = { RESTIC_REPOSITORY: path.join(world.root, `local-repo-${++repoNo}`), RESTIC_PASSWORD: "local pw", EDMS_BACKUP_STACK: "tz", EDMS_BACKUP_DIR: path.join(world.root, `backups-${repoNo}`), TZ: "Europe/Berlin" };
    const model = await backup({ ...env, RESTIC_REPOSITORY: "" }); // copied below under the ids, not pushed itself
    expect(model.code, model.stderr).toBe(0);
    const ids = ["20200328_223000", "20200329_003000", "20200329_013000", "20200329_223000", "20201024_223000", "20201025_003000", "20201025_230000",
      "20201227_223000", "20201227_233000", "20201228_000000", "20201231_223000", "20201231_233000", "20210103_223000", "20210103_233000", "20210104_000000"];
    for (const id of ids) await mustRun("cp", ["-al", path.join(env.EDMS_BACKUP_DIR, model.id), path.join(env.EDMS_BACKUP_DIR, id)]);
    fs.rmSync(path.join(env.EDMS_BACKUP_DIR, model.id), { recursive: true });
    const push = await world.edms(["offsite", "push"], { env });
    expect(push.code, push.stderr).toBe(0);
    const rules = { EDMS_BACKUP_KEEP_DAILY: "4", EDMS_BACKUP_KEEP_WEEKLY: "4", EDMS_BACKUP_KEEP_MONTHLY: "4", EDMS_BACKUP_OFFSITE_KEEP_DAILY: "4", EDMS_BACKUP_OFFSITE_KEEP_WEEKLY: "4", EDMS_BACKUP_OFFSITE_KEEP_MONTHLY: "4", EDMS_BACKUP_KEEP_LAST: "1", EDMS_BACKUP_RETENTION_DAYS: "0" };
    const local = await world.edms(["prune", "--dry-run"], { env: { ...env, ...rules } });
    expect(local.code, local.stderr).toBe(0);
    const localGone = local.stdout.split("\n").filter((l) => l.startsWith("would delete ")).map((l) => l.split(" ")[2]);
    const offsite = await world.edms(["offsite", "prune", "--dry-run"], { env: { ...env, ...rules } });
    expect(offsite.code, offsite.stderr).toBe(0);
    const offsiteGone = offsite.stdout.trim().split("\n").filter(Boolean).map((l) => l.split(" ")[2]);
    expect([...offsiteGone].sort(), `${local.stdout}\n${offsite.stdout}`).toEqual([...localGone].sort());
    // 31 Dec 23:30 UTC is 1 January in Berlin: the newest of December is 31 Dec 22:30 UTC.
    expect(local.stdout).toMatch(/^keep 20201231_223000 \(.*monthly \d/m);
    expect(localGone.length).toBeGreaterThan(3);
    const pruned = await world.edms(["offsite", "prune"], { env: { ...env, ...rules } });
    expect(pruned.code, pruned.stderr).toBe(0);
    const left = (await world.edms(["offsite", "list"], { env })).stdout.trim().split("\n").map((l) => l.split(/\s+/)[0]);
    expect(left.sort()).toEqual(ids.filter((id) => !localGone.includes(id)).sort());
  });
});

// Issue 35: a pinned backup outlives every retention rule, here and off-site.
describe("pinned backups", () => {
  it("survive prune and offsite prune past retention (pinned by pin --reason, by the stack's list, and off-site by the tag from another host); unpinned, they go", async () => {
    const env = { RESTIC_REPOSITORY: path.join(world.root, `local-repo-${++repoNo}`), RESTIC_PASSWORD: "local pw", EDMS_BACKUP_STACK: "pins", EDMS_BACKUP_DIR: path.join(world.root, `backups-${repoNo}`) };
    const model = await backup({ ...env, RESTIC_REPOSITORY: "" });
    expect(model.code, model.stderr).toBe(0);
    const ids = ["20250101_020000", "20250201_020000", "20250301_020000", "20250401_020000", "20250501_020000"];
    for (const id of ids) await mustRun("cp", ["-al", path.join(env.EDMS_BACKUP_DIR, model.id), path.join(env.EDMS_BACKUP_DIR, id)]);
    fs.rmSync(path.join(env.EDMS_BACKUP_DIR, model.id), { recursive: true });
    expect((await world.edms(["offsite", "push"], { env })).code).toBe(0);
    const pin = await world.edms(["pin", ids[1], "--reason", "audit 2025 (ticket #42)"], { env });
    expect(pin.code, pin.stderr).toBe(0);
    expect(pin.stdout).toMatch(new RegExp(`^pinned ${ids[1]} \\(audit 2025 \\(ticket #42\\)\\)`));
    expect((await world.edms(["list"], { env })).stdout).toMatch(new RegExp(`^${ids[1]} .* pinned \\(audit 2025 \\(ticket #42\\)\\)$`, "m"));
    // The off-site snapshot carries the tag.
    const snaps = JSON.parse((await mustRun("restic", ["--no-cache", "snapshots", "--json", "--tag", `id=${ids[1]}`], { env })) || "[]");
    expect(snaps.map((x: { tags: string[] }) => x.tags.includes("pinned"))).toEqual([true]);
    // Retention that keeps only the newest, here and off-site; ids[3] pinned by the stack's list.
    const rules = { EDMS_BACKUP_KEEP_LAST: "1", EDMS_BACKUP_RETENTION_DAYS: "0", EDMS_BACKUP_OFFSITE_KEEP_DAILY: "1", EDMS_BACKUP_OFFSITE_KEEP_WEEKLY: "0", EDMS_BACKUP_OFFSITE_KEEP_MONTHLY: "0", EDMS_BACKUP_PINNED: ids[3] };
    const dry = await world.edms(["prune", "--dry-run"], { env: { ...env, ...rules } });
    expect(dry.stdout).toMatch(new RegExp(`^keep ${ids[1]} \\(pinned\\)$`, "m"));
    const pruned = await world.edms(["prune"], { env: { ...env, ...rules } });
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(listDir(env.EDMS_BACKUP_DIR).filter((n) => /^\d{8}_\d{6}$/.test(n))).toEqual([ids[1], ids[3], ids[4]]);
    // From another host (no .pins there, no stack list): the tag alone keeps ids[1] off-site.
    const elsewhere = { ...env, EDMS_BACKUP_DIR: path.join(world.root, `backups-${repoNo}-elsewhere`) };
    fs.mkdirSync(elsewhere.EDMS_BACKUP_DIR);
    const offPruned = await world.edms(["offsite", "prune"], { env: { ...elsewhere, ...rules, EDMS_BACKUP_PINNED: "" } });
    expect(offPruned.code, offPruned.stderr).toBe(0);
    const offList = async () => (await world.edms(["offsite", "list"], { env })).stdout.trim().split("\n").map((l) => l.split(/\s+/)[0]);
    expect(await offList()).toEqual([ids[4], ids[1]]);
    // Unpinned: the next prunes delete it.
    const unpin = await world.edms(["unpin", ids[1]], { env });
    expect(unpin.code, unpin.stderr).toBe(0);
    expect((await world.edms(["list"], { env })).stdout).not.toMatch(/pinned/);
    expect((await world.edms(["prune"], { env: { ...env, ...rules } })).code).toBe(0);
    expect((await world.edms(["offsite", "prune"], { env: { ...env, ...rules } })).code).toBe(0);
    expect(listDir(env.EDMS_BACKUP_DIR).filter((n) => /^\d{8}_\d{6}$/.test(n))).toEqual([ids[3], ids[4]]);
    expect(await offList()).toEqual([ids[4]]); // (ids[3] went off-site from the other host, whose list did not name it)
    // One clear line for a backup that is nowhere, and for an id the stack's list holds.
    const missing = await world.edms(["pin", "20240101_000000"], { env });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim()).toMatch(/no backup 20240101_000000 here or off-site: run 'edms-backup list' and 'edms-backup offsite list'/);
    const listed = await world.edms(["unpin", ids[3]], { env: { ...env, EDMS_BACKUP_PINNED: ids[3] } });
    expect(listed.code).not.toBe(0);
    expect(listed.stderr.trim()).toMatch(/stays pinned by the stack config/);
  });
});

describe("off-site copies over SFTP (OpenSSH)", () => {
  it("the repository holds no plaintext of a document; a truncated pack fails check, and a pull of what it held leaves nothing", async () => {
    const env = sftpRepo();
    const taken = await backup(env);
    expect(taken.code, taken.stderr).toBe(0);
    const repo = env.RESTIC_REPOSITORY.replace(/^sftp:\/\/[^/]+\//, "");
    const grep = await run("grep", ["-r", "-l", "PLAINTEXT-MARKER-7f3a9c", repo]);
    expect(grep.code, grep.stdout).toBe(1);
    expect((await world.edms(["offsite", "check", "--read-data"], { env })).code).toBe(0);

    // Truncate the largest pack (it holds the scan).
    const packs = (await mustRun("find", [path.join(repo, "data"), "-type", "f", "-printf", "%s %p\\n"])).trim().split("\n").sort((a, b) => Number(b.split(" ")[0]) - Number(a.split(" ")[0]));
    const [size, pack] = packs[0].split(" ");
    fs.truncateSync(pack, Math.floor(Number(size) / 2));
    // The sizes alone show it (without --read-data, which retries each read for a minute).
    const check = await world.edms(["offsite", "check"], { env });
    expect(check.code).not.toBe(0);
    expect(check.stderr.trim().split("\n")).toEqual([expect.stringMatching(new RegExp(`off-site repository .* is damaged: .*${path.basename(pack).slice(0, 8)}`))]);

    fs.rmSync(path.join(env.EDMS_BACKUP_DIR, taken.id), { recursive: true });
    const pull = await world.edms(["offsite", "pull", taken.id], { env });
    expect(pull.code).not.toBe(0);
    expect(pull.stderr.trim().split("\n").pop()).toMatch(new RegExp(`(pulling backup ${taken.id} failed|backup ${taken.id} pulled from off-site does not match).*nothing was kept`));
    expect(listDir(env.EDMS_BACKUP_DIR).filter((n) => n === taken.id || n.startsWith(".tmp"))).toEqual([]);
    expect((await world.edms(["list"], { env })).stdout).not.toContain(taken.id);
  });

  it("a host key that is not the pinned one is refused with one line", async () => {
    const env = sftpRepo();
    fs.mkdirSync(env.EDMS_BACKUP_DIR);
    const knownHosts = path.join(world.root, "wrong-known-hosts");
    await mustRun("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(world.root, "impostor")]);
    const port = /:(\d+)\//.exec(env.RESTIC_REPOSITORY)![1];
    fs.writeFileSync(knownHosts, `[127.0.0.1]:${port} ${fs.readFileSync(path.join(world.root, "impostor.pub"), "utf8").split(" ").slice(0, 2).join(" ")}\n`);
    const result = await world.edms(["offsite", "list"], { env: { ...env, EDMS_BACKUP_OFFSITE_KNOWN_HOSTS: knownHosts } });
    expect(result.code).not.toBe(0);
    expect(result.stderr.trim().split("\n")).toEqual([expect.stringMatching(/host key is not the one in EDMS_BACKUP_OFFSITE_KNOWN_HOSTS/)]);
  });
});

describe("local backups and secrets", () => {
  it("the backup folder, its dump and config.tar.gz are readable by their owner only", async () => {
    const id = await world.backup();
    const dir = path.join(world.backupDir, id);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(dir, "config.tar.gz")).mode & 0o777).toBe(0o600);
    for (const file of fs.readdirSync(path.join(dir, "db"))) expect(fs.statSync(path.join(dir, "db", file)).mode & 0o077).toBe(0);
  });
});
