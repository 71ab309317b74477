import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { lastLine, run } from "../support/run";
import { makeWorld, type World } from "../support/world";

// `edms-backup metrics`: Prometheus text exposition, checked by promtool (Debian's
// prometheus package), with the values of the backups it describes.
let world: World;
let id: string;

beforeAll(async () => {
  world = await makeWorld();
  id = await world.backup({ EDMS_BACKUP_STACK: "prod" });
  await world.edms(["backup"], { env: { PGPASSWORD: "not the password" } });
});
afterAll(async () => {
  await world?.cleanup();
});

/** promtool check metrics on TEXT: its exit status and what it says. */
async function promtool(text: string) {
  return run("promtool", ["check", "metrics"], { input: text });
}

function sample(text: string, name: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`));
  return line === undefined ? undefined : Number(line.split(" ").pop());
}

describe("metrics", () => {
  it("passes promtool check metrics and says what the backups are", async () => {
    const result = await world.edms(["metrics"], { env: { EDMS_BACKUP_STACK: "prod" } });
    expect(result.code, result.stderr).toBe(0);
    const checked = await promtool(result.stdout);
    expect(checked.stdout + checked.stderr).toBe("");
    expect(checked.code).toBe(0);
    const text = result.stdout;
    expect(text).toMatch(/^edms_backup_backups\{stack="prod"\} 1$/m);
    const info = Object.fromEntries(fs.readFileSync(path.join(world.backupDir, id, "meta", "info"), "utf8").trim().split("\n").map((l) => l.split("=")));
    expect(sample(text, "edms_backup_last_database_bytes")).toBe(Number(info.db_bytes));
    expect(sample(text, "edms_backup_last_storage_new_bytes")).toBe(Number(info.storage_new_bytes));
    expect(sample(text, "edms_backup_last_total_bytes")).toBeGreaterThan(Number(info.db_bytes) + Number(info.storage_new_bytes) - 1);
    const now = Date.now() / 1000;
    for (const name of ["edms_backup_last_success_timestamp_seconds", "edms_backup_last_failure_timestamp_seconds"]) {
      expect(now - sample(text, name)!).toBeLessThan(600);
      expect(now - sample(text, name)!).toBeGreaterThanOrEqual(-1);
    }
    // The failure came after the success in beforeAll.
    expect(sample(text, "edms_backup_last_failure_timestamp_seconds")).toBeGreaterThanOrEqual(sample(text, "edms_backup_last_success_timestamp_seconds")!);
    expect(text).not.toMatch(/offsite|drill/);
  });

  it("writes a textfile atomically for node_exporter", async () => {
    const file = path.join(world.root, "textfile", "edms_backup.prom");
    const result = await world.edms(["metrics", "--textfile", file]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe("");
    expect((await promtool(fs.readFileSync(file, "utf8"))).code).toBe(0);
    expect(fs.readdirSync(path.dirname(file))).toEqual(["edms_backup.prom"]);
  });

  it("a stack name with quotes and backslashes stays one valid label", async () => {
    const result = await world.edms(["metrics"], { env: { EDMS_BACKUP_STACK: 'a"b\\c' } });
    expect((await promtool(result.stdout)).code).toBe(0);
    expect(result.stdout).toContain('edms_backup_backups{stack="a\\"b\\\\c"} 1');
  });

  it("a new backup shows at once", async () => {
    const second = lastLine((await world.edms(["backup"])).stdout);
    expect(second).toMatch(/^\d{8}_\d{6}$/);
    const text = (await world.edms(["metrics"])).stdout;
    expect(sample(text, "edms_backup_backups")).toBe(2);
  });
});
