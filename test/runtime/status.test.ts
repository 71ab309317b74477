import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { edmsBackup, run } from "../support/run";

describe("status", () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));
  function statusDir(lines: Record<string, string>): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edms-status-"));
    dirs.push(dir);
    fs.writeFileSync(path.join(dir, ".status"), Object.entries(lines).map(([k, v]) => `${k}=${v}\n`).join(""));
    return dir;
  }
  const utc = (msAgo: number) => new Date(Date.now() - msAgo).toISOString().replace(/\.\d+Z$/, "Z");
  const hour = 3_600_000;

  it("is ok when the last success is after the last scheduled time", async () => {
    const dir = statusDir({ last_success_time: utc(2 * hour), last_success_id: "x", schedule_started: "0" });
    const result = await run(edmsBackup, ["status"], { env: { EDMS_BACKUP_DIR: dir, EDMS_BACKUP_SCHEDULE: "0 */6 * * *", EDMS_BACKUP_STATUS_GRACE_MINUTES: "0" } });
    // The previous "*/6" hour boundary may be up to 6 h ago: 2 h ago is after it only if it was at most 2 h ago.
    const lastDue = new Date(Date.now());
    lastDue.setUTCMinutes(0, 0, 0);
    lastDue.setUTCHours(lastDue.getUTCHours() - (lastDue.getUTCHours() % 6));
    expect(result.code).toBe(Date.now() - 2 * hour >= lastDue.getTime() ? 0 : 1);
    expect(result.stdout).toContain("last success:");
  });

  it("is overdue (non-zero) when a scheduled backup has not succeeded, and shows the failure", async () => {
    const dir = statusDir({ last_success_time: utc(30 * hour), last_success_id: "20000101_000000", last_failure_time: utc(hour), last_failure_message: "database unreachable at x", schedule_started: "0" });
    const result = await run(edmsBackup, ["status"], { env: { EDMS_BACKUP_DIR: dir, EDMS_BACKUP_SCHEDULE: "0 2 * * *" } });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/last failure: .*database unreachable at x/);
    expect(result.stdout).toMatch(/state: +overdue/);
  });

  it("is ok with a recent success, and right after the scheduler started", async () => {
    const ok = statusDir({ last_success_time: utc(60_000), last_success_id: "x" });
    expect((await run(edmsBackup, ["status"], { env: { EDMS_BACKUP_DIR: ok, EDMS_BACKUP_SCHEDULE: "* * * * *" } })).code).toBe(0);
    const started = statusDir({ schedule_started: String(Math.floor(Date.now() / 1000)) });
    expect((await run(edmsBackup, ["status"], { env: { EDMS_BACKUP_DIR: started, EDMS_BACKUP_SCHEDULE: "0 2 * * *" } })).code).toBe(0);
  });
});
