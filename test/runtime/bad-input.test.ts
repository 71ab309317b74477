import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../support/pg";
import { edmsBackup, mustRun, run } from "../support/run";
import { listDir, makeWorld, type World } from "../support/world";

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
    await expectRefused(result, /EDMS_BACKUP_DB_COMPRESSION is 'fast': set it to a gzip level from 0 \(none, the default\) to 9/);
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
    await new Promise((r) => setTimeout(r, 1500));
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
