import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerHost, testImage } from "../support/docker";
import { djangoVerify } from "../support/fixtures";
import { materialise } from "../support/materialise";
import { runProgram, stackConfig, type ProgramRun } from "../support/program";
import { mustRun, run } from "../support/run";

// A newcomer's first `pulumi up --stack dev`: Pulumi.dev.yaml exactly as committed, its
// demo EDMS and the scheduler on this machine's daemon, and the first backup of it within
// minutes, listed by the stack's own listBackups output.
const docker = new DockerHost("unix:///var/run/docker.sock");
const demoUsers = [
  ["admin", "demo-admin"],
  ["qa.manager", "demo-qa"],
  ["author", "demo-author"],
  ["reviewer", "demo-reviewer"],
];
let program: ProgramRun;
let taggedBase = false;
let base: string;

beforeAll(async () => {
  program = await runProgram(stackConfig("dev"), { stack: "dev", secretKeys: [], askDaemons: true });
  expect(program.error).toBeUndefined();
  // No registry is reachable here: the test image stands in for the stack's postgres image
  // under its name, only when that name is not already on this daemon.
  base = stackConfig("dev")["edms-backup:image"];
  if (!(await docker.exists("image", base))) {
    await docker.must(["tag", testImage, base]);
    taggedBase = true;
  }
});

afterAll(async () => {
  await docker.removeAll({
    containers: ["edms-backup-dev", "edms-demo-app", "edms-demo-db"],
    volumes: ["edms-backups-dev", "edms-demo-documents", "edms-demo-media", "edms-demo-db-data"],
    networks: ["edms-demo"],
  });
  if (taggedBase) await docker.run(["rmi", base]);
});

describe("the dev stack's first pulumi up", () => {
  let id: string;

  it("declares the demo EDMS and the scheduler, and the first backup is listed within minutes", async () => {
    await materialise(program);
    const listBackups = String(program.outputs.listBackups);
    const end = Date.now() + 240_000;
    for (;;) {
      const listed = await mustRun("sh", ["-c", listBackups]).catch(() => "");
      const match = /^(\d{8}_\d{6})\s/.exec(listed);
      if (match) {
        id = match[1];
        break;
      }
      if (Date.now() > end) throw new Error(`no backup listed by '${listBackups}' after 4 minutes:\n${(await docker.run(["logs", "edms-backup-dev"])).stdout}`);
      await new Promise((r) => setTimeout(r, 3000));
    }
    await docker.must(["exec", "edms-backup-dev", "/opt/edms-backup/edms-backup", "verify", id]);
  });

  it("npm run edms -- --stack dev runs the runtime in the stack's scheduler from this machine", async () => {
    const root = path.join(__dirname, "..", "..");
    const list = await run("npm", ["run", "-s", "edms", "--", "--stack", "dev", "list"], { cwd: root });
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`^${id} `, "m"));
    const verify = await run("node", [path.join(root, "scripts", "edms.mjs"), "--stack", "dev", "verify", id]);
    expect(verify.code, verify.stderr).toBe(0);
    const bad = await run("node", [path.join(root, "scripts", "edms.mjs"), "--stack", "dev", "verify", "20000101_000000"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/no complete backup 20000101_000000/);
  });

  it("streams the WAL for point-in-time recovery as the replication role the demo database was made with", async () => {
    // The initdb.d script made the role and its pg_hba.conf line; the command line bounds the slot.
    expect((await docker.psql("edms-demo-db", "SELECT rolreplication FROM pg_roles WHERE rolname = 'edms_replication'")).trim()).toBe("t");
    expect((await docker.psql("edms-demo-db", "SELECT count(*) FROM pg_hba_file_rules WHERE 'replication' = ANY (database) AND 'edms_replication' = ANY (user_name) AND auth_method = 'scram-sha-256'")).trim()).toBe("1");
    expect((await docker.psql("edms-demo-db", "SHOW max_slot_wal_keep_size")).trim()).toBe("2GB");
    const end = Date.now() + 120_000;
    for (;;) {
      const status = await docker.run(["exec", "edms-backup-dev", "/opt/edms-backup/edms-backup", "wal", "status"]);
      if (status.code === 0 && /gaps: none/.test(status.stdout)) break;
      if (Date.now() > end) throw new Error(`wal status did not pass within 2 minutes:\n${status.stdout}${status.stderr}\n${(await docker.run(["logs", "edms-backup-dev"])).stderr}`);
      await new Promise((r) => setTimeout(r, 3000));
    }
    expect((await docker.psql("edms-demo-db", "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'edms_backup_dev' AND active")).trim()).toBe("1");
  });

  it("the backup holds the demo's data: its users, documents and files", async () => {
    const manifest = JSON.parse(await docker.must(["exec", "edms-backup-dev", "cat", `/backups/${id}/manifest.json`]));
    const text = JSON.stringify(manifest);
    expect(text).toMatch(/users_user/);
    expect(text).toMatch(/documents_document/);
    const files = await docker.must(["exec", "edms-backup-dev", "find", `/backups/${id}`, "-name", "SOP-*-v*.txt"]);
    expect(files.trim().split("\n")).toHaveLength(80);
    const signatures = await docker.must(["exec", "edms-backup-dev", "find", `/backups/${id}`, "-path", "*signatures/user-*.png"]);
    expect(signatures.trim().split("\n")).toHaveLength(4);
    const rows = (await docker.psql("edms-demo-db", "SELECT username || ' ' || password FROM users_user ORDER BY id")).trim().split("\n");
    expect(rows.map((r) => r.split(" ")[0])).toEqual(demoUsers.map(([u]) => u));
    for (const [i, row] of rows.entries()) expect(djangoVerify(demoUsers[i][1], row.split(" ")[1])).toBe(true);
  });
});
