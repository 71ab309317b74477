import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerHost, testImage, uniq } from "../support/docker";
import { edmsSchemaSql, makeStorageTree, snapshotTree } from "../support/fixtures";
import { materialise } from "../support/materialise";
import { encodeConfig, runProgram } from "../support/program";
import { dbFingerprint, type PgExec } from "../support/pg";
import { repoRoot } from "../support/run";

// What `pulumi up` on a test stack declares, created on the real Docker daemon next to an
// EDMS stand-in: a PostgreSQL container, two storage volumes, an app container.
const docker = new DockerHost();
const stack = uniq("e2e");
const network = uniq("edms-net");
const db = uniq("edms-db");
const app = uniq("edms-app");
const receiver = uniq("edms-receiver");
const volumes = { docs: uniq("edms-docs"), media: uniq("edms-media"), backups: uniq("edms-backups") };
const local = fs.mkdtempSync(path.join(os.tmpdir(), "edms-stack-"));
const configDir = path.join(local, "srv");
const scheduler = `edms-backup-${stack}`;
const trees: ReturnType<typeof snapshotTree>[] = [];
const password = "stack db password";

const inDb: PgExec = (program, args, input) => docker.must(["exec", "-i", db, program, "-U", "edms", ...args], input);
const exec = (...args: string[]) => docker.must(["exec", scheduler, "/opt/edms-backup/edms-backup", ...args]);

function stackConfig(extra: Record<string, unknown> = {}): Record<string, string> {
  return encodeConfig({
    "edms-backup:dockerHost": "unix:///var/run/docker.sock",
    "edms-backup:network": network,
    "edms-backup:database": { host: db, port: 5432, name: "edms", user: "edms" },
    "edms-backup:dbPassword": password,
    "edms-backup:storageVolumes": [volumes.docs, volumes.media],
    "edms-backup:configPaths": [path.join(configDir, ".env")],
    "edms-backup:schedule": "* * * * *",
    "edms-backup:retentionDays": 7,
    "edms-backup:keepLast": 3,
    "edms-backup:image": testImage,
    "edms-backup:appContainers": [app],
    "edms-backup:backupVolume": volumes.backups,
    "edms-backup:appSecrets": { SECRET_KEY: "stack-secret-key", ENCRYPTION_KEY: "stack-encryption-key" },
    "edms-backup:notifications": { pingUrl: `http://${receiver}:8080/ping/tok-7c1`, webhookUrl: `http://${receiver}:8080/hook/tok-7c1` },
    ...extra,
  });
}
const secretKeys = ["edms-backup:dbPassword", "edms-backup:appSecrets", "edms-backup:notifications"];

async function waitFor<T>(what: string, seconds: number, probe: () => Promise<T | undefined>, everyMs = 2000): Promise<T> {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out after ${seconds}s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

beforeAll(async () => {
  fs.mkdirSync(configDir, { recursive: true });
  fs.writeFileSync(path.join(configDir, ".env"), "SECRET_KEY=stack-secret-key\n", { mode: 0o600 });
  await docker.must(["network", "create", network]);
  await docker.startPostgres(db, network, password);
  await docker.psql(db, edmsSchemaSql(1));
  for (const [i, [name, volume]] of Object.entries({ docs: volumes.docs, media: volumes.media }).entries()) {
    const dir = path.join(local, name);
    await makeStorageTree(dir, name);
    trees[i] = snapshotTree(dir);
    await docker.must(["volume", "create", volume]);
    await docker.fillVolume(volume, dir);
  }
  await docker.must(["run", "-d", "--name", app, "--network", network, "--entrypoint", "sleep", testImage, "infinity"]);
  // The notification receiver: test/bed/http-receiver.sh behind socat, on the test network.
  await docker.must(["create", "--name", receiver, "--network", network, "--entrypoint", "socat", testImage,
    "TCP-LISTEN:8080,reuseaddr,fork", "EXEC:bash /usr/local/bin/http-receiver.sh /tmp/requests"]);
  await docker.must(["cp", path.join(repoRoot, "test", "bed", "http-receiver.sh"), `${receiver}:/usr/local/bin/http-receiver.sh`]);
  await docker.must(["start", receiver]);
});

/** What the receiver recorded: method, path and body of each request. */
async function received(): Promise<{ method: string; path: string; body: string }[]> {
  const log = await docker.run(["exec", receiver, "cat", "/tmp/requests"]);
  return log.stdout.trim().split("\n").filter(Boolean).map((line) => {
    const [method, target, body] = line.split(" ");
    return { method, path: target, body: Buffer.from(body ?? "", "base64").toString() };
  });
}

afterAll(async () => {
  await docker.removeAll({ containers: [scheduler, app, db, receiver], volumes: Object.values(volumes), networks: [network] });
  fs.rmSync(local, { recursive: true, force: true });
});

describe("the declared stack on a real Docker daemon", () => {
  let backupId: string;
  let original: Awaited<ReturnType<typeof dbFingerprint>>;

  it("takes complete backups by itself on schedule, and its healthcheck turns healthy", async () => {
    original = await dbFingerprint(inDb, "edms");
    const program = await runProgram(stackConfig(), { stack, secretKeys, askDaemons: true });
    expect(program.error).toBeUndefined();
    const { restore } = await materialise(program);
    expect(restore).toBeUndefined();

    backupId = await waitFor("the first scheduled backup", 150, async () => {
      const list = await exec("list");
      return /^(\d{8}_\d{6})\s/.exec(list)?.[1];
    });
    await exec("verify", backupId);
    const health = await waitFor("a healthy healthcheck", 200, async () => {
      const status = (await docker.must(["inspect", "--format", "{{.State.Health.Status}}", scheduler])).trim();
      return status === "healthy" ? status : undefined;
    });
    expect(health).toBe("healthy");
    const logs = await docker.run(["logs", scheduler]);
    expect(logs.stdout).toMatch(new RegExp(`backup: ok ${backupId}`));
    const manifest = JSON.parse(await docker.must(["exec", scheduler, "cat", `/backups/${backupId}/manifest.json`]));
    expect(Object.keys(manifest.secrets).sort()).toEqual(["ENCRYPTION_KEY", "SECRET_KEY"]);
    expect(manifest.config.included).toEqual([path.join(configDir, ".env")]);
    const leak = await docker.run(["exec", scheduler, "grep", "-r", "-l", "-e", "stack-secret-key", "-e", password, "/backups/"]);
    expect(leak.stdout).toBe("");
    // The dead man's switch and the webhook heard of it, through curl in the runtime image.
    const heard = await waitFor("the success ping and the webhook event", 60, async () => {
      const requests = await received();
      return requests.some((r) => r.path === "/ping/tok-7c1") && requests.some((r) => r.body.includes(backupId)) ? requests : undefined;
    });
    expect(heard.map((r) => r.path)).toEqual(expect.arrayContaining(["/ping/tok-7c1/start", "/ping/tok-7c1", "/hook/tok-7c1"]));
    const event = JSON.parse(heard.find((r) => r.path === "/hook/tok-7c1" && r.body.includes(backupId))!.body);
    expect(event).toMatchObject({ schema: "edms-backup.event/1", event: "backup.succeeded", stack, id: backupId, kind: "scheduled" });
    for (const value of [password, "stack-secret-key", "stack-encryption-key"]) expect(JSON.stringify(heard)).not.toContain(value);
    expect((await docker.run(["logs", scheduler])).stdout + (await docker.must(["inspect", scheduler]))).not.toContain("tok-7c1");
    // Its settings are a file of mode 0600 in the container, not its environment.
    const inspect = await docker.must(["inspect", scheduler]);
    for (const value of [password, "stack-secret-key", "stack-encryption-key"]) expect(inspect).not.toContain(value);
    expect((await docker.must(["exec", scheduler, "stat", "-c", "%a %U", "/run/edms-backup/env"])).trim()).toBe("600 root");
  });

  // A unix socket and an ssh alias of one VM: the daemon is asked which address its
  // scheduler was declared through (here a second path to the same socket).
  it("refuses the same daemon under a second address, naming the address to keep", async () => {
    const alias = path.join(local, "same-daemon.sock");
    fs.symlinkSync("/var/run/docker.sock", alias);
    const program = await runProgram(
      stackConfig({ "edms-backup:dockerHost": `unix://${alias}`, "edms-backup:restore": { backupId, confirm: true, fromHost: "unix:///var/run/docker.sock" } }),
      { stack, secretKeys, askDaemons: true },
    );
    expect(program.error?.message).toMatch(
      new RegExp(`the Docker daemon at unix://${alias} already runs this stack's scheduler ${scheduler}, declared through unix:///var/run/docker.sock: both addresses reach one daemon[^]*set edms-backup:dockerHost back to unix:///var/run/docker.sock and remove edms-backup:restore.fromHost`),
    );
    expect(program.resources.filter((r) => r.type.startsWith("docker:") || r.type.startsWith("pulumi:providers"))).toEqual([]);
  });

  // Config paths are mounted by their folder: a single-file bind mount pins the inode, and
  // a file replaced by rename (an editor, a deploy, a --with-config restore) stayed old.
  it("a config file replaced by rename on the host is what the next scheduled backup holds", async () => {
    const envPath = path.join(configDir, ".env");
    fs.writeFileSync(`${envPath}.new`, "SECRET_KEY=stack-secret-key\nNEW_SETTING=renamed-in\n", { mode: 0o600 });
    fs.renameSync(`${envPath}.new`, envPath);
    const held = await waitFor("a scheduled backup with the new .env", 150, async () => {
      for (const id of (await exec("list")).split("\n").map((l) => l.split(" ")[0]).filter(Boolean)) {
        const content = await docker.must(["exec", scheduler, "tar", "-xzOf", `/backups/${id}/config.tar.gz`]);
        if (content.includes("NEW_SETTING=renamed-in")) return content;
      }
      return undefined;
    });
    expect(held).toContain("SECRET_KEY=stack-secret-key");
  });

  it("restores a damaged database and storage with the declared restore command, stopping and starting the app", async () => {
    await docker.psql(db, "DELETE FROM audit_audittrail; UPDATE users_user SET password = 'lost'; DROP TABLE users_userrole;");
    await docker.must(["run", "--rm", "-v", `${volumes.docs}:/v`, "--entrypoint", "bash", testImage, "-c", "rm -rf /v/documents && echo junk > /v/junk.txt"]);
    expect(await dbFingerprint(inDb, "edms")).not.toEqual(original);
    const startedBefore = (await docker.must(["inspect", "--format", "{{.State.StartedAt}}", app])).trim();

    const program = await runProgram(stackConfig({ "edms-backup:restore": { backupId, confirm: true } }), { stack, secretKeys, askDaemons: true });
    expect(program.error).toBeUndefined();
    const { restore } = await materialise(program);
    const result = await restore!();
    expect(result.stderr).toContain(`stopped ${app}`);
    expect(result.stderr).toContain(`started ${app} again`);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Restored backup \d{8}_\d{6}/);
    expect(result.stdout + result.stderr).not.toContain(password);
    expect(result.stdout + result.stderr).not.toContain("stack-secret-key");

    expect(await dbFingerprint(inDb, "edms")).toEqual(original);
    for (const [i, volume] of [volumes.docs, volumes.media].entries()) {
      const out = fs.mkdtempSync(path.join(local, "restored-"));
      await docker.readVolume(volume, ".", out);
      expect(snapshotTree(out)).toEqual(trees[i]);
    }
    const appState = (await docker.must(["inspect", "--format", "{{.State.Running}} {{.State.StartedAt}}", app])).trim().split(" ");
    expect(appState[0]).toBe("true");
    expect(appState[1]).not.toBe(startedBefore);
  });

  it("one document back: restore.files (no confirm) puts a deleted document and folder back, the app keeps running, the database untouched", async () => {
    const doc = "documents/2026/01/ünïcødé – 文書.pdf";
    await docker.must(["run", "--rm", "-v", `${volumes.docs}:/v`, "--entrypoint", "bash", testImage, "-c", `rm -rf /v/private "/v/${doc}"`]);
    const database = await dbFingerprint(inDb, "edms");
    const startedBefore = (await docker.must(["inspect", "--format", "{{.State.StartedAt}}", app])).trim();
    const program = await runProgram(stackConfig({ "edms-backup:restore": { backupId, files: [`${volumes.docs}/${doc}`, `${volumes.docs}/private`] } }), { stack, secretKeys, askDaemons: true });
    expect(program.error).toBeUndefined();
    const { restore } = await materialise(program);
    const result = await restore!();
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/2 file\(s\) back, 0 kept \(newer here\)/);
    expect(result.stderr).not.toContain(`stopped ${app}`);
    const out = fs.mkdtempSync(path.join(local, "files-"));
    await docker.readVolume(volumes.docs, ".", out);
    // As backed up, but for the mtimes of the folders the two were put back into (they are
    // the folders' own now: an entry came and went).
    const parents = [".", "documents/2026/01"];
    const now = snapshotTree(out);
    for (const p of parents) expect(now[p].mtimeNs).not.toBe(trees[0][p].mtimeNs);
    const withoutParents = (t: typeof now) => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, parents.includes(k) ? { ...v, mtimeNs: "" } : v]));
    expect(withoutParents(now)).toEqual(withoutParents(trees[0]));
    expect(await dbFingerprint(inDb, "edms")).toEqual(database);
    expect((await docker.must(["inspect", "--format", "{{.State.StartedAt}}", app])).trim()).toBe(startedBefore);
  });

  // ^C on `pulumi up`: the engine cancels the provider, which SIGKILLs the command. The
  // operator's shell holds what would change the restore if it reached it.
  it("a cancelled up leaves the restore running on the host: the app runs again, the next up reports it", async () => {
    await docker.psql(db, "UPDATE users_user SET password = 'lost again'");
    const program = await runProgram(stackConfig({ "edms-backup:restore": { backupId, confirm: true, requestId: "cancelled" } }), { stack, secretKeys, askDaemons: true });
    expect(program.error).toBeUndefined();
    const { startRestore } = await materialise(program);
    const polluted = { EDMS_BACKUP_ALLOW_SECRET_MISMATCH: "ENCRYPTION_KEY", PGSSLMODE: "require", EDMS_SECRET_ENCRYPTION_KEY: "not the key", PGDATABASE: "postgres", EDMS_BACKUP_DIR: "/nowhere" };
    Object.assign(process.env, polluted);
    let first: ReturnType<NonNullable<typeof startRestore>>;
    try {
      first = startRestore!();
    } finally {
      for (const key of Object.keys(polluted)) delete process.env[key];
    }
    // Killed once the job has stopped the app, mid-restore. Looked for often: on a fast
    // machine the app was down too briefly for a look every 2 s to see it.
    const job = await waitFor("the restore job to stop the app", 120, async () => {
      // This stack's job only (its network): another test file may run a restore job too.
      const jobs = (await docker.must(["ps", "-q", "--filter", "label=edms-backup.restore-job", "--filter", `network=${network}`])).trim();
      const running = (await docker.must(["inspect", "--format", "{{.State.Running}}", app])).trim();
      return jobs !== "" && running === "false" ? jobs : undefined;
    }, 100);
    first.kill();
    const killed = await first.result;
    expect(killed.code).toBe(137);

    await waitFor("the job to end and the app to run again", 180, async () => {
      const state = (await docker.must(["inspect", "--format", "{{.State.Status}}", job])).trim();
      const running = (await docker.must(["inspect", "--format", "{{.State.Running}}", app])).trim();
      return state === "exited" && running === "true" ? true : undefined;
    });
    expect(await dbFingerprint(inDb, "edms")).toEqual(original);

    // The next `up` runs the same command again: it reports that restore, starts none.
    const again = await startRestore!().result;
    expect(again.stderr).toMatch(/started by an earlier run has ended/);
    expect(again.stdout).toMatch(/Restored backup \d{8}_\d{6}/);
    expect(again.stderr).not.toMatch(/differs/);
    expect(again.code).toBe(0);
    expect(await docker.exists("container", job)).toBe(false);
    expect((await docker.must(["inspect", "--format", "{{.State.Running}}", app])).trim()).toBe("true");
  });

  it("fails the update with the runtime's message when the restore fails, and starts the app again", async () => {
    const program = await runProgram(stackConfig({ "edms-backup:restore": { backupId: "20000101_000000", confirm: true, requestId: "again" } }), { stack, secretKeys, askDaemons: true });
    const { restore } = await materialise(program);
    const result = await restore!();
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/no complete backup 20000101_000000 in \/backups/);
    expect((await docker.must(["inspect", "--format", "{{.State.Running}}", app])).trim()).toBe("true");
    expect(await dbFingerprint(inDb, "edms")).toEqual(original);
  });
});
