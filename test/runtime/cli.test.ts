import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { edmsBackup, run, runtimeDir } from "../support/run";
import { makeWorld, type World } from "../support/world";

// Issue 32, finding 9: help the rbenv way, --help on every command, URLs shown without
// their user-info, the backup folder's state files readable by their owner only.

const commands = fs.readdirSync(path.join(runtimeDir, "libexec")).map((f) => f.replace(/^edms-backup-/, "")).sort();

describe("help", () => {
  it("there are commands to test", () => {
    expect(commands).toEqual(expect.arrayContaining(["backup", "offsite", "prune", "restore", "verify"]));
  });

  it.each(commands)("%s: help, --help and -h print its Usage, Summary and help text, no code", async (command) => {
    const help = await run(edmsBackup, ["help", command], { env: { EDMS_BACKUP_DIR: "" } });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(new RegExp(`^Usage: edms-backup ${command}\\b`));
    expect(help.stdout).toMatch(/^Summary: \S/m);
    expect(help.stdout).not.toMatch(/set -euo pipefail|^source |edms_command=|shellcheck/m);
    for (const flag of ["--help", "-h"]) {
      const own = await run(edmsBackup, [command, flag], { env: { EDMS_BACKUP_DIR: "" } });
      expect(own.code, `${command} ${flag}`).toBe(0);
      expect(own.stdout).toBe(help.stdout);
    }
  });

  it("'help' lists the commands; 'help' of one that does not exist says so", async () => {
    const all = await run(edmsBackup, ["help"]);
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(/^Usage: edms-backup <command>/);
    expect(all.stdout).not.toMatch(/set -euo pipefail/);
    const none = await run(edmsBackup, ["help", "nosuch"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no such command 'nosuch'/);
  });
});

describe("a repository's address as it is shown", () => {
  it.each([
    ["s3:https://key:p@ss@w0rd@store.example.org/bucket/edms", "s3:https://store.example.org/bucket/edms"],
    ["rest:https://user:pa%2Fss@backup.example.org:8000/edms", "rest:https://backup.example.org:8000/edms"],
    ["rest:https://backup.example.org:8000/edms?token=abc", "rest:https://backup.example.org:8000/edms"],
    ["sftp:backup@vault.example.org:/srv/restic", "sftp:backup@vault.example.org:/srv/restic"],
    ["/mnt/usb/restic", "/mnt/usb/restic"],
  ])("%s is shown as %s", async (repository, shown) => {
    const result = await run("bash", ["-c", `source "$1/lib/common.sh"; source "$1/lib/offsite.sh"; offsite_where`, "_", runtimeDir], { env: { RESTIC_REPOSITORY: repository } });
    expect(result.stdout).toBe(shown);
  });
});

describe("the backup folder's own files", () => {
  let world: World;
  beforeAll(async () => {
    world = await makeWorld();
  });
  afterAll(async () => {
    await world?.cleanup();
  });

  it(".status, .notify.log and the off-site marks are readable by their owner only", async () => {
    fs.chmodSync(world.root, 0o755);
    const result = await world.edms(["backup"], { env: { EDMS_BACKUP_PING_URL: "http://127.0.0.1:1/ping" } });
    expect(result.code, result.stderr).toBe(0);
    const log = path.join(world.backupDir, ".notify.log");
    const end = Date.now() + 30_000;
    while (!fs.existsSync(log) && Date.now() < end) await new Promise((r) => setTimeout(r, 300));
    for (const name of [".status", ".notify.log"]) {
      expect((fs.statSync(path.join(world.backupDir, name)).mode & 0o777).toString(8), name).toBe("600");
    }
  });
});
