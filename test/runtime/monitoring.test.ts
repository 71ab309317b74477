import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { edmsBackup, run } from "../support/run";
import { makeWorld, type World } from "../support/world";

// Issue 35: the Grafana dashboard and the Prometheus alert rules in monitoring/, against
// promtool and against what `edms-backup metrics` prints on a stack with backups, a drill,
// an off-site copy and point-in-time recovery running.
const dir = path.join(__dirname, "..", "..", "monitoring");
let world: World;
let printed: Set<string>;

beforeAll(async () => {
  world = await makeWorld();
  const env = { EDMS_BACKUP_STACK: "prod", RESTIC_REPOSITORY: path.join(world.root, "restic"), RESTIC_PASSWORD: "monitoring pw" };
  const must = async (args: string[]) => {
    const r = await world.edms(args, { env });
    expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
  };
  await run("restic", ["init"], { env });
  // A backup whose off-site copy fails (a wrong repository password), a failed one (a wrong
  // database password), then good ones: every timestamp metrics knows is set.
  const offsiteFails = await world.edms(["backup"], { env: { ...env, RESTIC_PASSWORD: "wrong" } });
  expect(offsiteFails.code).not.toBe(0);
  expect((await world.edms(["backup"], { env: { ...env, PGPASSWORD: "wrong" } })).code).not.toBe(0);
  await must(["backup"]);
  await must(["drill"]);
  await must(["basebackup"]);
  await must(["storage-point"]);
  // The receiver, until it has recorded the WAL it holds.
  const receiver = spawn(edmsBackup, ["wal", "receive"], { env: { ...(process.env as Record<string, string>), ...world.env, ...env }, stdio: "ignore" });
  const received = path.join(world.backupDir, "pitr", "wal", ".received");
  for (let i = 0; i < 150 && !fs.existsSync(received); i++) await new Promise((r) => setTimeout(r, 200));
  const metrics = await world.edms(["metrics"], { env });
  const done = new Promise((r) => receiver.on("exit", r));
  receiver.kill("SIGTERM");
  await done;
  expect(metrics.code, metrics.stderr).toBe(0);
  printed = new Set([...metrics.stdout.matchAll(/^(edms_backup_[a-z_]+)\{/gm)].map((m) => m[1]));
}, 180_000);
afterAll(async () => {
  await world?.cleanup();
});

const names = (text: string) => new Set([...text.matchAll(/edms_backup_[a-z_]+/g)].map((m) => m[0]));

describe("alert rules (monitoring/edms-backup.rules.yml)", () => {
  it("pass promtool check rules and promtool test rules, and use only metrics that metrics prints", async () => {
    const check = await run("promtool", ["check", "rules", "edms-backup.rules.yml"], { cwd: dir });
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toMatch(/SUCCESS: 10 rules found/);
    const test = await run("promtool", ["test", "rules", "edms-backup.rules.test.yml"], { cwd: dir });
    expect(test.code, test.stdout + test.stderr).toBe(0);
    expect(test.stdout).toMatch(/SUCCESS/);
    const used = names(fs.readFileSync(path.join(dir, "edms-backup.rules.yml"), "utf8"));
    expect(used.size).toBeGreaterThan(8);
    for (const name of used) expect(printed, name).toContain(name);
    // Every alert the issue asks for is there, and has a unit test.
    const tests = fs.readFileSync(path.join(dir, "edms-backup.rules.test.yml"), "utf8");
    for (const alert of ["EdmsBackupOverdue", "EdmsBackupFailed", "EdmsBackupOffsiteFailing", "EdmsBackupDrillFailed", "EdmsBackupDrillOverdue", "EdmsBackupSizeChanged"]) {
      expect(tests, alert).toContain(`alertname: ${alert}\n        exp_alerts:\n          - exp_labels`);
    }
  });

  it("promtool test rules fails when an alert does not fire as its test says (the check can fail)", async () => {
    const broken = path.join(world.root, "broken-rules");
    fs.mkdirSync(broken);
    fs.writeFileSync(path.join(broken, "edms-backup.rules.yml"), fs.readFileSync(path.join(dir, "edms-backup.rules.yml"), "utf8").replace("> 26 * 3600", "> 30 * 3600"));
    fs.copyFileSync(path.join(dir, "edms-backup.rules.test.yml"), path.join(broken, "edms-backup.rules.test.yml"));
    const test = await run("promtool", ["test", "rules", "edms-backup.rules.test.yml"], { cwd: broken });
    expect(test.code).not.toBe(0);
    expect(test.stdout + test.stderr).toMatch(/alertname: EdmsBackupOverdue/);
  });
});

describe("Grafana dashboard (monitoring/grafana-dashboard.json)", () => {
  it("loads as a dashboard whose every query is valid PromQL over metrics that metrics prints", async () => {
    const dashboard = JSON.parse(fs.readFileSync(path.join(dir, "grafana-dashboard.json"), "utf8"));
    expect(dashboard).toMatchObject({ uid: "edms-backup", title: "edms-backup", schemaVersion: expect.any(Number) });
    expect(dashboard.templating.list.map((v: { name: string }) => v.name)).toEqual(["datasource", "stack"]);
    const panels = dashboard.panels.filter((p: { type: string }) => p.type !== "row");
    expect(panels.length).toBeGreaterThan(10);
    const ids = dashboard.panels.map((p: { id: number }) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const exprs: string[] = panels.flatMap((p: { targets: { expr: string }[] }) => p.targets.map((t) => t.expr));
    for (const p of panels) expect(p.targets.length, p.title).toBeGreaterThan(0);
    // Each query parsed by promtool (as recording rules), $stack as Grafana fills it in.
    const rules = { groups: [{ name: "dashboard", rules: exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr: expr.replaceAll("$stack", "prod") })) }] };
    const file = path.join(world.root, "dashboard-queries.rules.json");
    fs.writeFileSync(file, JSON.stringify(rules));
    const check = await run("promtool", ["check", "rules", file]);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    const used = names(exprs.join("\n"));
    for (const name of used) expect(printed, name).toContain(name);
    // The metrics it shows cover what metrics prints for a protected stack (the vault's are its own).
    for (const name of printed) expect(used, name).toContain(name);
  });
});
