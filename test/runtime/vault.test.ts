import { spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { snapshotTree } from "../support/fixtures";
import { startSwift, type Store } from "../support/offsite";
import { dbFingerprint, startCluster, type Cluster } from "../support/pg";
import { startReceiver } from "../support/receiver";
import { edmsBackup, lastLine, mustRun, run, type RunResult } from "../support/run";
import { makeWorld, type World } from "../support/world";

// The vault (edms-backup vault): a restic repository on a disk of its own (a folder here)
// that pulls the stack's snapshots from the off-site store (Swift's s3api over TLS) with
// restic's copy. The VM's side is the world's: its backups go off-site with the VM's
// credentials; the attacker below has exactly those.

let world: World;
let swift: Store;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let n = 0;

beforeAll(async () => {
  [world, swift, receiver] = await Promise.all([makeWorld(), startSwift(), startReceiver()]);
}, 180_000);
afterAll(async () => {
  await Promise.all([world?.cleanup(), swift?.stop(), receiver?.close()]);
});

interface Pair {
  /** What the VM's scheduler has: the off-site repository and its credentials. */
  vm: Record<string, string>;
  /** What the vault's container has: its own repository and password, the source's to read. */
  vault: Record<string, string>;
}

function pair(): Pair {
  n++;
  const transport = {
    AWS_ACCESS_KEY_ID: swift.env.AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: swift.env.AWS_SECRET_ACCESS_KEY,
    AWS_DEFAULT_REGION: swift.env.AWS_DEFAULT_REGION,
    RESTIC_CACERT: swift.env.RESTIC_CACERT,
  };
  const source = `s3:${swift.env.S3_ENDPOINT}/vault-src-${n}`;
  return {
    vm: { ...transport, RESTIC_REPOSITORY: source, RESTIC_PASSWORD: `vm repo password ${n}`, EDMS_BACKUP_STACK: "prod", EDMS_BACKUP_DIR: path.join(world.root, `vm-${n}`) },
    vault: {
      ...transport,
      RESTIC_REPOSITORY: path.join(world.root, `vault-disk-${n}`, "repository"),
      RESTIC_PASSWORD: `the vault's own password ${n}`,
      RESTIC_FROM_REPOSITORY: source,
      RESTIC_FROM_PASSWORD: `vm repo password ${n}`,
      EDMS_BACKUP_DIR: path.join(world.root, `vault-disk-${n}`),
      EDMS_BACKUP_STACK: "prod",
      EDMS_BACKUP_WEBHOOK_URL: `${receiver.url}/vault-${n}`,
      EDMS_BACKUP_SCHEDULE: "0 2 * * *",
    },
  };
}

function vaultCmd(p: Pair, args: string[], extra: Record<string, string> = {}): Promise<RunResult> {
  fs.mkdirSync(p.vault.EDMS_BACKUP_DIR, { recursive: true });
  // Only the vault's settings: none of the world's PG* or storage folders.
  return run(edmsBackup, ["vault", ...args], { env: { ...clean(), ...p.vault, ...extra } });
}

/** The environment without anything of edms-backup's, restic's or the database's. */
function clean(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const key of Object.keys(process.env)) if (/^(RESTIC_|EDMS_|PG|AWS_)/.test(key)) env[key] = undefined;
  return env;
}

async function backup(p: Pair): Promise<string> {
  const result = await world.edms(["backup"], { env: p.vm });
  expect(result.code, result.stderr).toBe(0);
  return lastLine(result.stdout);
}

/** restic as the attacker runs it: with the VM's repository settings. */
function vmRestic(p: Pair, args: string[]): Promise<string> {
  return mustRun("restic", [...(p.vm.RESTIC_CACERT ? ["--cacert", p.vm.RESTIC_CACERT] : []), "--no-cache", ...args], { env: { ...clean(), ...p.vm } });
}

function vaultRestic(p: Pair, args: string[]): Promise<string> {
  return mustRun("restic", ["--no-cache", ...args], { env: { ...clean(), RESTIC_REPOSITORY: p.vault.RESTIC_REPOSITORY, RESTIC_PASSWORD: p.vault.RESTIC_PASSWORD } });
}

async function vaultIds(p: Pair): Promise<string[]> {
  const list = await vaultCmd(p, ["list"]);
  expect(list.code, list.stderr).toBe(0);
  return list.stdout.trim().split("\n").filter(Boolean).map((l) => l.split(/\s+/)[0]).sort();
}

/** The webhook events of one vault (its URL's path), once `count` have arrived: they are sent in the background. */
async function events(at: string, count: number): Promise<{ event: string; [key: string]: any }[]> {
  const mine = () => receiver.received.filter((r) => r.path === at).map((r) => JSON.parse(r.body));
  for (let i = 0; i < 100 && mine().length < count; i++) await new Promise((r) => setTimeout(r, 100));
  return mine();
}

function duBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += fs.statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return total;
}

/** A snapshot made with restic by hand, as an attacker would: any host, tags and time (and BYTES of random data). */
async function forge(p: Pair, host: string, time: string, tags: string[], bytes = 0): Promise<void> {
  const dir = fs.mkdtempSync(path.join(world.root, "forged-"));
  fs.writeFileSync(path.join(dir, "manifest.json"), `{"forged": "${crypto.randomUUID()}"}\n`);
  if (bytes > 0) fs.writeFileSync(path.join(dir, "data.bin"), crypto.randomBytes(bytes));
  await mustRun("restic", [...(p.vm.RESTIC_CACERT ? ["--cacert", p.vm.RESTIC_CACERT] : []), "--no-cache", "backup", ".", "--host", host, "--time", time, ...tags.flatMap((t) => ["--tag", t])], {
    env: { ...clean(), ...p.vm, TZ: "UTC" },
    cwd: dir,
  });
  fs.rmSync(dir, { recursive: true, force: true });
}

/** A snapshot shaped as the stack's own (host, tags, its time as id), BYTES of random data: a night without the backup's cost. */
let nights = 0;
async function night(p: Pair, bytes = 0): Promise<string> {
  const t = new Date(Date.now() - 3600_000 + ++nights * 1000);
  const id = t.toISOString().slice(0, 19).replace(/[-:]/g, "").replace("T", "_");
  await forge(p, "edms-prod", t.toISOString().slice(0, 19).replace("T", " "), ["edms-backup", "stack=prod", `id=${id}`, "kind=manual"], bytes);
  return id;
}

/** A source repository in a folder: for what does not depend on the store. */
function localPair(): Pair {
  const p = pair();
  const repo = path.join(world.root, `local-src-${n}`);
  return { vm: { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: p.vm.RESTIC_PASSWORD, EDMS_BACKUP_STACK: "prod", EDMS_BACKUP_DIR: p.vm.EDMS_BACKUP_DIR }, vault: { ...p.vault, RESTIC_FROM_REPOSITORY: repo } };
}

describe("vault sync", () => {
  it("copies the stack's snapshots into a repository of its own; the next night adds about that night's chunks, and nothing when nothing is new", async () => {
    const p = pair();
    const first = await backup(p);
    const synced = await vaultCmd(p, ["sync"]);
    expect(synced.code, synced.stderr).toBe(0);
    expect(synced.stderr).toMatch(/initialising the vault repository/);
    expect(synced.stdout.trim()).toBe(first);
    expect(await vaultIds(p)).toEqual([first]);
    const before = duBytes(p.vault.RESTIC_REPOSITORY);

    // One night: 3 MiB of new, incompressible documents.
    fs.writeFileSync(path.join(world.storage[0], `night-${n}.bin`), crypto.randomBytes(3 << 20));
    const second = await backup(p);
    const again = await vaultCmd(p, ["sync"]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.trim()).toBe(second);
    const grew = duBytes(p.vault.RESTIC_REPOSITORY) - before;
    expect(grew).toBeGreaterThan(3 << 20);
    // That night's chunks and its new dump, not a second copy of everything.
    expect(grew).toBeLessThan((3 << 20) + before / 2 + (1 << 20));
    expect(await vaultIds(p)).toEqual([first, second].sort());

    const idle = await vaultCmd(p, ["sync"]);
    expect(idle.code, idle.stderr).toBe(0);
    expect(idle.stdout).toBe("");
    expect(idle.stderr).toMatch(/0 backup\(s\) copied into the vault; it holds 2/);
    // The copies keep the stack's host and tags: a restore finds them as it finds off-site ones.
    const snaps = JSON.parse(await vaultRestic(p, ["snapshots", "--json"])) as { hostname: string; tags: string[] }[];
    expect(snaps.map((s) => s.hostname)).toEqual(["edms-prod", "edms-prod"]);
    // Each names its backup's kind: backups by hand are not what the schedule must explain.
    expect(snaps[0].tags).toEqual(expect.arrayContaining(["edms-backup", "stack=prod", "kind=manual"]));
    // The metrics the vault's container keeps for node_exporter, checked by promtool.
    const metrics = await run(edmsBackup, ["metrics"], { env: { ...clean(), ...p.vault } });
    expect(metrics.code, metrics.stderr).toBe(0);
    expect(metrics.stdout).toMatch(/^edms_backup_vault_snapshots\{stack="prod"\} 2$/m);
    expect(metrics.stdout).toMatch(/^edms_backup_vault_alarms\{stack="prod"\} 0$/m);
    expect(metrics.stdout).toMatch(new RegExp(`^edms_backup_vault_newest_backup_timestamp_seconds\\{stack="prod"\\} ${Date.parse(`${second.slice(0, 4)}-${second.slice(4, 6)}-${second.slice(6, 8)}T${second.slice(9, 11)}:${second.slice(11, 13)}:${second.slice(13, 15)}Z`) / 1000}$`, "m"));
    expect(metrics.stdout).not.toMatch(/^edms_backup_backups/m);
    expect((await run("promtool", ["check", "metrics"], { input: metrics.stdout })).code).toBe(0);
    const told = await events(`/vault-${n}`, 3);
    expect(told.map((e) => e.event)).toEqual(["vault.synced", "vault.synced", "vault.synced"]);
    expect(told[1].ids).toEqual([second]);
  });

  it("a wrong source password, or a source repository swapped for another, fails loudly and copies nothing", async () => {
    const p = pair();
    await vmRestic(p, ["init"]);
    const first = await night(p);
    expect((await vaultCmd(p, ["sync"])).code).toBe(0);
    await night(p);

    const wrong = await vaultCmd(p, ["sync"], { RESTIC_FROM_PASSWORD: "not the password" });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr.trim().split("\n").pop()).toMatch(/wrong password for the source \(off-site\) repository s3:https:.*: set RESTIC_FROM_PASSWORD/);
    expect(await vaultIds(p)).toEqual([first]);

    // Another repository at another place, holding a backup of the same stack.
    const other = pair();
    await vmRestic(other, ["init"]);
    await night(other);
    const swapped = await vaultCmd(p, ["sync"], { RESTIC_FROM_REPOSITORY: other.vm.RESTIC_REPOSITORY, RESTIC_FROM_PASSWORD: other.vm.RESTIC_PASSWORD });
    expect(swapped.code).toBe(1);
    expect(swapped.stderr.trim().split("\n").pop()).toMatch(/the source repository .* is [0-9a-f]{8}, not [0-9a-f]{8} which the vault copied from: it was replaced .*nothing was copied/);
    expect(await vaultIds(p)).toEqual([first]);
    const told = await events(`/vault-${n - 1}`, 3);
    expect(told.map((e) => e.event)).toEqual(["vault.synced", "vault.failed", "vault.failed"]);
  });

  it("a sync killed at any point leaves the vault whole; the next sync completes", async () => {
    const p = pair();
    await vmRestic(p, ["init"]);
    const ids = [await night(p)];
    expect((await vaultCmd(p, ["sync"])).code).toBe(0);
    const hook = path.join(world.root, `vault-hook-${n}.sh`);
    const reached = path.join(world.root, `vault-hook-${n}.reached`);
    fs.writeFileSync(hook, `#!/bin/sh\n[ "$1" = vault-copy ] && touch '${reached}'\nexit 0\n`, { mode: 0o755 });
    // Killed as the copy starts, and at three points while restic copies.
    for (const delayMs of [0, 300, 900]) {
      ids.push(await night(p, 4 << 20));
      fs.rmSync(reached, { force: true });
      const env = Object.fromEntries(Object.entries({ ...process.env, ...clean(), ...p.vault, EDMS_BACKUP_STEP_HOOK: hook }).filter(([, v]) => v !== undefined)) as Record<string, string>;
      const child = spawn(edmsBackup, ["vault", "sync"], { env, detached: true, stdio: "ignore" });
      const ended = new Promise<void>((resolve) => child.on("close", () => resolve()));
      const until = Date.now() + 60_000;
      while (!fs.existsSync(reached) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(fs.existsSync(reached)).toBe(true);
      await new Promise((r) => setTimeout(r, delayMs));
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // ended before the kill: a kill after the end is the same case as no kill
      }
      await ended;
      const check = await vaultCmd(p, ["check"]);
      expect(check.code, check.stderr).toBe(0);
    }
    const finished = await vaultCmd(p, ["sync"]);
    expect(finished.code, finished.stderr).toBe(0);
    expect(await vaultIds(p)).toEqual([...ids].sort());
    await vaultRestic(p, ["check", "--read-data"]);
  });
});

describe("the VM compromised: the attacker has everything the VM has", () => {
  const p = {} as Pair;
  let ids: string[] = [];
  let db: Awaited<ReturnType<typeof dbFingerprint>>;
  let storage: ReturnType<typeof snapshotTree>[];
  let attacked: RunResult;

  beforeAll(async () => {
    Object.assign(p, pair());
    // Data the new VM's empty instance cannot have by chance.
    await world.cluster.psql("UPDATE documents_document SET title = title || ' (before the attack)' WHERE id % 3 = 0");
    ids.push(await backup(p));
    ids.push(await backup(p));
    db = await dbFingerprint(world.env, "edms");
    storage = world.storage.map(snapshotTree);
    expect((await vaultCmd(p, ["sync"])).code).toBe(0);

    // The attack, with the VM's settings only: every local backup deleted, every snapshot
    // forgotten and pruned, then fake snapshots: one in the future, one of another host,
    // and more in one day than the schedule runs.
    fs.rmSync(p.vm.EDMS_BACKUP_DIR, { recursive: true, force: true });
    const all = (JSON.parse(await vmRestic(p, ["snapshots", "--json"])) as { id: string }[]).map((s) => s.id);
    await vmRestic(p, ["forget", "--prune", ...all]);
    await forge(p, "edms-prod", "2031-01-01 02:00:00", ["edms-backup", "stack=prod", "id=20310101_020000"]);
    await forge(p, "attacker-box", "2026-01-01 02:00:00", ["edms-backup"]);
    for (let i = 0; i < 5; i++) {
      await forge(p, "edms-prod", `2026-11-30 03:0${i}:00`, ["edms-backup", "stack=prod", `id=20261130_030${i}00`]);
    }
    attacked = await vaultCmd(p, ["sync"]);
  }, 300_000);

  it("the vault still holds every backup, alarms (exit, webhook) naming the lost, the future, the foreign and the too many; copies no fake it cannot explain", async () => {
    expect(attacked.code).toBe(1);
    // Both backups are of one day: the source's own retention (daily 7…) keeps only the newer.
    expect(attacked.stderr).toMatch(new RegExp(`ALARM: the source lost 1 snapshot\\(s\\) that its own retention keeps and the vault holds \\(backups ${ids[1]}\\)`));
    expect(attacked.stderr).toMatch(/ALARM: the source's snapshot [0-9a-f]{8} \(backup 20310101_020000\) is dated in the future: not copied/);
    expect(attacked.stderr).toMatch(/ALARM: the source holds snapshot [0-9a-f]{8} of 2026-01-01 02:00 UTC from host attacker-box that edms-backup did not make for stack prod: not copied/);
    expect(attacked.stderr).toMatch(/ALARM: the source's snapshot [0-9a-f]{8} \(backup 20261130_030000\) is older than the vault's newest copy/);
    expect(await vaultIds(p)).toEqual(ids);
    await vaultRestic(p, ["check", "--read-data"]);
    const alarm = (await events(`/vault-${n}`, 2)).find((e) => e.event === "vault.failed");
    for (const told of [/source lost 1 snapshot/, /dated in the future/, /from host attacker-box/, /older than the vault's newest/]) expect(alarm?.alarms.join("\n")).toMatch(told);
    expect(alarm?.alarms.join("\n")).toMatch(/holds 5 scheduled snapshots of 2026-11-30, more than the schedule '0 2 \* \* \*' runs that day \(1\) plus 1/);
    expect(alarm?.stack).toBe("prod");
  });

  it("then the repository's files deleted: the sync fails naming it, the vault is unchanged", async () => {
    const all = (JSON.parse(await vmRestic(p, ["snapshots", "--json"])) as { id: string }[]).map((s) => s.id);
    await vmRestic(p, ["forget", "--prune", ...all]);
    // The bucket emptied with the VM's credentials (restic has no 'delete repository'):
    // Swift's own API takes the same account and key as its s3api.
    const bucket = p.vm.RESTIC_REPOSITORY.replace(/^s3:https:\/\/[^/]+\//, "");
    const objects = await mustRun("bash", ["-c", `set -euo pipefail
      c=(curl -sSf --cacert "$RESTIC_CACERT")
      token=$("\${c[@]}" -o /dev/null -D - -H "X-Auth-User: $AWS_ACCESS_KEY_ID" -H "X-Auth-Key: $AWS_SECRET_ACCESS_KEY" "$S3_ENDPOINT/auth/v1.0" | tr -d '\\r' | sed -n 's/^[Xx]-[Aa]uth-[Tt]oken: //p')
      "\${c[@]}" -H "X-Auth-Token: $token" "$S3_ENDPOINT/v1/AUTH_test/$1" | while IFS= read -r key; do
        "\${c[@]}" -X DELETE -H "X-Auth-Token: $token" "$S3_ENDPOINT/v1/AUTH_test/$1/$key" >/dev/null
      done
      "\${c[@]}" -H "X-Auth-Token: $token" "$S3_ENDPOINT/v1/AUTH_test/$1" | wc -l`, "_", bucket], { env: { ...clean(), ...p.vm, S3_ENDPOINT: swift.env.S3_ENDPOINT } });
    expect(objects.trim()).toBe("0");
    const gone = await vaultCmd(p, ["sync"]);
    expect(gone.code).toBe(1);
    expect(gone.stderr.trim().split("\n").pop()).toMatch(/no restic repository at the source s3:https:.* any more, where the vault copied repository [0-9a-f]{8} from: the off-site copies are gone/);
    expect(await vaultIds(p)).toEqual(ids);
  });

  it("a new VM restores the last good backup from the vault, byte-identical, with the vault's password for that restore only", async () => {
    const target: Cluster = await startCluster();
    const folders = world.storage.map((_, i) => path.join(world.root, `after-attack-${n}`, `storage-${i}`));
    folders.forEach((dir) => fs.mkdirSync(dir, { recursive: true }));
    const newVm = { ...clean(), ...target.env, RESTIC_REPOSITORY: p.vault.RESTIC_REPOSITORY, RESTIC_PASSWORD: p.vault.RESTIC_PASSWORD, EDMS_BACKUP_STACK: "prod", EDMS_BACKUP_DIR: path.join(world.root, `after-attack-${n}`, "backups"), EDMS_BACKUP_STORAGE_DIRS: folders.join(":") };
    fs.mkdirSync(newVm.EDMS_BACKUP_DIR);
    try {
      const restored = await run(edmsBackup, ["restore", ids[1], "--yes"], { env: newVm });
      expect(restored.code, restored.stderr).toBe(0);
      expect(await dbFingerprint(target.env, "edms")).toEqual(db);
      folders.forEach((dir, i) => expect(snapshotTree(dir)).toEqual(storage[i]));
      // Nothing of the vault stays on the new VM but the backup it pulled.
      expect(fs.readdirSync(newVm.EDMS_BACKUP_DIR).filter((f) => !f.startsWith(".") || f === ".offsite")).toEqual([ids[1]]);
    } finally {
      await target.stop();
    }
  });
});

describe("vault sync: overdue", () => {
  it("alarms when no backup arrived for longer than the schedule plus the grace, and copies what there is", async () => {
    const p = localPair();
    await vmRestic(p, ["init"]);
    const old = new Date(Date.now() - 3 * 86400_000);
    const id = old.toISOString().slice(0, 19).replace(/[-:]/g, "").replace("T", "_");
    await forge(p, "edms-prod", old.toISOString().slice(0, 19).replace("T", " "), ["edms-backup", "stack=prod", `id=${id}`, "kind=scheduled"]);
    const late = await vaultCmd(p, ["sync"]);
    expect(late.code).toBe(1);
    expect(late.stderr).toMatch(new RegExp(`ALARM: no new backup of stack prod arrived since .*: the schedule '0 2 \\* \\* \\*' ran at .*, more than 360 minutes ago`));
    expect(late.stdout.trim()).toBe(id);
    // A grace longer than the gap: no alarm.
    const patient = await vaultCmd(p, ["sync"], { EDMS_BACKUP_VAULT_GRACE_MINUTES: String(5 * 24 * 60) });
    expect(patient.code, patient.stderr).toBe(0);
  });
});

describe("vault prune: by age, never by count", () => {
  it("keeps every snapshot of the last KEEP_DAYS days however many, then the newest of each recent month; the source's deletions change nothing", async () => {
    const p = pair();
    const day = 86400_000;
    const at = (msAgo: number) => new Date(Date.now() - msAgo);
    const stamp = (d: Date) => d.toISOString().slice(0, 19).replace("T", " ");
    const idOf = (d: Date) => d.toISOString().slice(0, 19).replace(/[-:]/g, "").replace("T", "_");
    // Old ones, then twelve within the last five days (more than any "keep last N" would hold).
    await vmRestic(p, ["init"]);
    const times = [at(400 * day), at(70 * day), at(69 * day), at(40 * day), ...Array.from({ length: 12 }, (_, i) => at(5 * day - i * 9 * 3600_000))];
    for (const t of times) await forge(p, "edms-prod", stamp(t), ["edms-backup", "stack=prod", `id=${idOf(t)}`, "kind=manual"]);
    const synced = await vaultCmd(p, ["sync"], { EDMS_BACKUP_VAULT_GRACE_MINUTES: String(7 * 24 * 60) });
    expect(synced.code, synced.stderr).toBe(0);
    // The source forgets all but the newest: the vault's prune does not follow.
    const snaps = JSON.parse(await vmRestic(p, ["snapshots", "--json"])) as { id: string; time: string }[];
    await vmRestic(p, ["forget", ...snaps.sort((a, b) => a.time.localeCompare(b.time)).slice(0, -1).map((s) => s.id)]);

    const env = { EDMS_BACKUP_VAULT_KEEP_DAYS: "30", EDMS_BACKUP_VAULT_KEEP_MONTHLY: "3", TZ: "UTC" };
    const dry = await vaultCmd(p, ["prune", "--dry-run"], env);
    expect(dry.code, dry.stderr).toBe(0);
    // The rule, written out: younger than 30 days, or the newest of one of the 3 most recent calendar months.
    const now = new Date();
    const monthsBack = (d: Date) => (now.getUTCFullYear() - d.getUTCFullYear()) * 12 + now.getUTCMonth() - d.getUTCMonth();
    const seen = new Set<string>();
    const expected: Date[] = [];
    for (const t of [...times].sort((a, b) => b.getTime() - a.getTime())) {
      const month = t.toISOString().slice(0, 7);
      const kept = now.getTime() - t.getTime() < 30 * day || (!seen.has(month) && monthsBack(t) < 3);
      seen.add(month);
      if (!kept) expected.push(t);
    }
    expect(expected).toContain(times[0]);
    expect(expected.length).toBeLessThan(4);
    const wanted = expected.map((t) => `would delete ${idOf(t)}`).sort();
    expect(dry.stdout.trim().split("\n").sort()).toEqual(wanted);
    expect((await vaultIds(p)).length).toBe(times.length);

    const pruned = await vaultCmd(p, ["prune"], env);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(await vaultIds(p)).toEqual(times.map(idOf).filter((id) => !expected.map(idOf).includes(id)).sort());
    await vaultRestic(p, ["check"]);
  });
});
