import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { edmsBackup } from "../support/run";
import { listDir, makeWorld, type World } from "../support/world";

let world: World;
beforeAll(async () => {
  world = await makeWorld();
});
afterAll(async () => {
  await world?.cleanup();
});

it("runs backup and prune when the schedule matches, logs each event, and goes on after a failure", async () => {
  // The first run fails (a storage folder is missing), the folder appears, the next run succeeds.
  const missing = path.join(world.root, "appears-later");
  const env = {
    ...(process.env as Record<string, string>),
    ...world.env,
    EDMS_BACKUP_SCHEDULE: "* * * * *",
    EDMS_BACKUP_STORAGE_DIRS: `${world.storage[0]}:${missing}`,
    // An off-site repository that is down: local backups and prunes go on, each off-site
    // step says it failed, and the repository's check runs on its own schedule.
    RESTIC_REPOSITORY: "s3:https://127.0.0.1:1/edms",
    RESTIC_PASSWORD: "not used",
    EDMS_BACKUP_OFFSITE_CHECK_SCHEDULE: "* * * * *",
    EDMS_BACKUP_DRILL_SCHEDULE: "* * * * *",
  };
  const child = spawn(edmsBackup, ["schedule"], { env, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  const waitFor = async (pattern: RegExp, ms: number) => {
    const end = Date.now() + ms;
    while (!pattern.test(log) && Date.now() < end) await new Promise((r) => setTimeout(r, 250));
    expect(log).toMatch(pattern);
  };
  await waitFor(/started: schedule '\* \* \* \* \*' \(UTC\), next run/, 5_000);
  await waitFor(/backup: failed: .*storage folder .*appears-later is missing/, 75_000);
  fs.mkdirSync(missing);
  fs.writeFileSync(path.join(missing, "late.pdf"), "late");
  await waitFor(/backup: ok \d{8}_\d{6}, but off-site copy failed: the off-site repository .* is unreachable/, 75_000);
  await waitFor(/prune: ok/, 10_000);
  await waitFor(/offsite prune: failed: .* is unreachable/, 10_000);
  await waitFor(/offsite check --read-data=5%: failed: .* is unreachable/, 75_000);
  // A restore drill on its own schedule, and the metrics file that node_exporter reads.
  await waitFor(/drill: ok \(Drill of backup \d{8}_\d{6}: restored in \d+ s, beside the live data/, 75_000);
  // Written right after the drill's event.
  const prom = path.join(world.backupDir, "metrics", "edms_backup.prom");
  const drilled = /^edms_backup_drill_last_success\{stack="edms"\} 1$/m;
  for (let end = Date.now() + 10_000; Date.now() < end && !drilled.test(fs.readFileSync(prom, "utf8")); ) await new Promise((r) => setTimeout(r, 200));
  const metrics = fs.readFileSync(prom, "utf8");
  expect(metrics).toMatch(drilled);
  expect(metrics).toMatch(/^edms_backup_backups\{stack="edms"\} 1$/m);
  const id = /backup: ok (\d{8}_\d{6})/.exec(log)![1];
  expect(listDir(world.backupDir)).toContain(id);
  for (const line of log.trim().split("\n")) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ /);
  const status = fs.readFileSync(path.join(world.backupDir, ".status"), "utf8");
  expect(status).toContain(`last_success_id=${id}`);

  child.kill("SIGTERM");
  const code = await new Promise((r) => child.on("close", r));
  expect(code).toBe(0);
  expect(log).toMatch(/stopping/);
});
