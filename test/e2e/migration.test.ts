import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerHost, testImage, uniq } from "../support/docker";
import { djangoVerify, edmsSchemaSql, edmsUsers, makeStorageTree, snapshotTree } from "../support/fixtures";
import { materialise } from "../support/materialise";
import { encodeConfig, runProgram, types, type ProgramRun } from "../support/program";
import { dbFingerprint, type PgExec } from "../support/pg";
import { mustRun, repoRoot } from "../support/run";
import { startSftpStore } from "../support/sftp";

// Moving to a new VM by pointing the stack at it: host A is this machine's Docker daemon,
// host B a second daemon with its own data-root, exec-root, pidfile and socket.
const bDir = fs.mkdtempSync(path.join(os.tmpdir(), "edms-vm-b-"));
const secondDaemon = path.join(repoRoot, "test", "bed", "second-dockerd.sh");
const a = new DockerHost("unix:///var/run/docker.sock");
let b: DockerHost;

const stack = uniq("move");
const names = {
  network: uniq("edms-net"),
  db: uniq("edms-db"),
  app: uniq("edms-app"),
  docs: uniq("edms-docs"),
  media: uniq("edms-media"),
  backups: uniq("edms-backups"),
};
const scheduler = `edms-backup-${stack}`;
const local = fs.mkdtempSync(path.join(os.tmpdir(), "edms-move-"));
const envFileB = path.join(local, "vm-b", "srv", "app.env");
const secrets = { SECRET_KEY: "django-old-secret", ENCRYPTION_KEY: "files-key-1", JWT_SECRET_KEY: "jwt-1" };
const trees: ReturnType<typeof snapshotTree>[] = [];

const pg = (host: DockerHost): PgExec => (program, args, input) => host.must(["exec", "-i", names.db, program, "-U", "edms", ...args], input);

function config(dockerHost: string, password: string, extra: Record<string, unknown> = {}): Record<string, string> {
  return encodeConfig({
    "edms-backup:dockerHost": dockerHost,
    "edms-backup:network": names.network,
    "edms-backup:database": { host: names.db, port: 5432, name: "edms", user: "edms" },
    "edms-backup:dbPassword": password,
    "edms-backup:storageVolumes": [names.docs, names.media],
    "edms-backup:schedule": "0 2 * * *",
    "edms-backup:image": testImage,
    "edms-backup:appContainers": [names.app],
    "edms-backup:backupVolume": names.backups,
    "edms-backup:appSecrets": secrets,
    ...extra,
  });
}
const secretKeys = ["edms-backup:dbPassword", "edms-backup:appSecrets"];

/** An EDMS stand-in on a host: PostgreSQL, two storage volumes, an app container. */
async function edmsOn(host: DockerHost, password: string): Promise<void> {
  await host.must(["network", "create", names.network]);
  await host.startPostgres(names.db, names.network, password);
  await host.must(["volume", "create", names.docs]);
  await host.must(["volume", "create", names.media]);
  await host.must(["run", "-d", "--name", names.app, "--network", names.network, "--entrypoint", "sleep", testImage, "infinity"]);
}

let programA: ProgramRun;
let backupId: string;
let dataA: Awaited<ReturnType<typeof dbFingerprint>>;

beforeAll(async () => {
  b = new DockerHost((await mustRun("bash", [secondDaemon, "start", bDir])).trim());
  await edmsOn(a, "password on A");
  await a.psql(names.db, edmsSchemaSql(1));
  for (const [i, [name, volume]] of Object.entries({ docs: names.docs, media: names.media }).entries()) {
    const dir = path.join(local, name);
    await makeStorageTree(dir, name);
    trees[i] = snapshotTree(dir);
    await a.fillVolume(volume, dir);
  }
  await edmsOn(b, "password on B");
  fs.mkdirSync(path.dirname(envFileB), { recursive: true });

  // Host A as it runs today: the stack deployed there, one backup taken.
  programA = await runProgram(config(a.host, "password on A"), { stack, secretKeys, askDaemons: true });
  expect(programA.error).toBeUndefined();
  await materialise(programA);
  backupId = (await a.must(["exec", scheduler, "/opt/edms-backup/edms-backup", "backup"])).trim().split("\n").pop()!;
  dataA = await dbFingerprint(pg(a), "edms");
});

afterAll(async () => {
  for (const host of [a, b]) {
    if (host) await host.removeAll({ containers: [scheduler, names.app, names.db], volumes: [names.docs, names.media, names.backups], networks: [names.network] });
  }
  await mustRun("bash", [secondDaemon, "stop", bDir]).catch(() => undefined);
  fs.rmSync(bDir, { recursive: true, force: true });
  fs.rmSync(local, { recursive: true, force: true });
});

describe("moving the stack to a new VM with the same secrets", () => {
  let result: Awaited<ReturnType<NonNullable<Awaited<ReturnType<typeof materialise>>["restore"]>>>;
  let moved: Awaited<ReturnType<typeof materialise>>;

  beforeAll(async () => {
    const programB = await runProgram(
      config(b.host, "password on B", {
        "edms-backup:restore": { backupId, confirm: true, fromHost: a.host },
        "edms-backup:appEnvFile": envFileB,
      }),
      { stack, secretKeys, askDaemons: true },
    );
    expect(programB.error).toBeUndefined();
    moved = await materialise(programB, programA);
    result = await moved.restore!();
  });

  it("creates the scheduler on B, removes it from A, and keeps A's backup volume", async () => {
    expect(result.stderr).toContain(`copying backup ${backupId} from ${a.host}`);
    expect(result.stderr).toContain("checksums verified");
    expect(result.code).toBe(0);
    expect(await b.exists("container", scheduler)).toBe(true);
    expect(await a.exists("container", scheduler)).toBe(false);
    expect(moved.deleted.some((n) => n.includes("scheduler"))).toBe(true);
    const listA = await a.must(["run", "--rm", "-v", `${names.backups}:/backups:ro`, "--entrypoint", "ls", testImage, "/backups"]);
    expect(listA.split("\n")).toContain(backupId);
    const listB = await b.must(["exec", scheduler, "/opt/edms-backup/edms-backup", "list"]);
    expect(listB).toMatch(new RegExp(`^${backupId} `));
    await b.must(["exec", scheduler, "/opt/edms-backup/edms-backup", "verify", backupId]);
  });

  it("brings the data over byte for byte and every user's password still verifies", async () => {
    expect(await dbFingerprint(pg(b), "edms")).toEqual(dataA);
    for (const [i, volume] of [names.docs, names.media].entries()) {
      const out = fs.mkdtempSync(path.join(local, "on-b-"));
      await b.readVolume(volume, ".", out);
      expect(snapshotTree(out)).toEqual(trees[i]);
    }
    const rows = (await b.psql(names.db, "SELECT username || ' ' || password FROM users_user ORDER BY id")).trim().split("\n");
    expect(rows).toHaveLength(edmsUsers.length);
    for (const [i, row] of rows.entries()) {
      const [username, hash] = row.split(" ");
      expect(username).toBe(edmsUsers[i].username);
      expect(djangoVerify(edmsUsers[i].password, hash)).toBe(true);
      expect(djangoVerify("wrong password", hash)).toBe(false);
    }
    expect((await b.psql(names.db, "SELECT count(*) FROM django_session")).trim()).toBe("1");
  });

  it("says nothing about secrets when they are the same, and writes the app's env file", () => {
    expect(result.stdout + result.stderr).not.toMatch(/differs/);
    expect(fs.statSync(envFileB).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(envFileB, "utf8")).toBe("ENCRYPTION_KEY=files-key-1\nJWT_SECRET_KEY=jwt-1\nSECRET_KEY=django-old-secret\n");
    for (const value of Object.values(secrets)) expect(result.stdout + result.stderr).not.toContain(value);
  });
});

describe("restoring on the new VM with other secrets", () => {
  async function restoreOnB(requestId: string, appSecrets: Record<string, string>, restore: Record<string, unknown> = {}) {
    const program = await runProgram(
      config(b.host, "password on B", {
        "edms-backup:appSecrets": appSecrets,
        "edms-backup:restore": { backupId, confirm: true, requestId, ...restore },
      }),
      { stack, secretKeys, askDaemons: true },
    );
    expect(program.error).toBeUndefined();
    expect(program.resources.find((r) => r.type === types.command)?.inputs.triggers).toEqual([backupId, requestId, b.host, (restore.fromHost as string | undefined) ?? ""]);
    return (await materialise(program)).restore!();
  }

  it("a different SECRET_KEY restores and says users must log in again", async () => {
    await b.psql(names.db, "UPDATE users_user SET email = 'changed@b'");
    const result = await restoreOnB("other-secret-key", { ...secrets, SECRET_KEY: "django-new-secret" });
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/secret SECRET_KEY differs from the backup's: sessions, CSRF tokens and tokens signed with it become invalid, so users must log in again; their passwords still work/);
    expect(await dbFingerprint(pg(b), "edms")).toEqual(dataA);
  });

  it("a different ENCRYPTION_KEY is refused before anything changes, naming the secret", async () => {
    await b.psql(names.db, "UPDATE users_user SET email = 'changed again@b'");
    const before = await dbFingerprint(pg(b), "edms");
    // The operator's shell holds what would bypass the refusal or break the connection:
    // pulumi-command hands the restore script its whole environment.
    const polluted = { EDMS_BACKUP_ALLOW_SECRET_MISMATCH: "ENCRYPTION_KEY", PGSSLMODE: "require", EDMS_SECRET_ENCRYPTION_KEY: "files-key-1" };
    Object.assign(process.env, polluted);
    let result: Awaited<ReturnType<typeof restoreOnB>>;
    try {
      result = await restoreOnB("other-encryption-key", { ...secrets, ENCRYPTION_KEY: "files-key-2" });
    } finally {
      for (const key of Object.keys(polluted)) delete process.env[key];
    }
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/secret ENCRYPTION_KEY differs from the one backup \d{8}_\d{6} was taken with: files and fields encrypted with the old key will not decrypt/);
    expect(await dbFingerprint(pg(b), "edms")).toEqual(before);
    expect((await b.must(["inspect", "--format", "{{.State.Running}}", names.app])).trim()).toBe("true");
  });

  it("an allowed ENCRYPTION_KEY mismatch restores, saying what it breaks", async () => {
    const result = await restoreOnB("allowed", { ...secrets, ENCRYPTION_KEY: "files-key-2" }, { allowSecretMismatch: ["ENCRYPTION_KEY"] });
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/secret ENCRYPTION_KEY differs from the backup's: files and fields encrypted with the old key will not decrypt/);
    expect(await dbFingerprint(pg(b), "edms")).toEqual(dataA);
  });
});

// Runbook E: the old VM is lost. The stack's backups went off-site (restic over sftp to a
// store that is neither VM); the old host's daemon is stopped for good; the stack, pointed
// at an empty new VM, restores the backup from the off-site repository.
describe("the old VM is lost: restoring from the off-site copy onto an empty new VM", () => {
  const offsitePassword = "restic pass phrase for the move";
  const sftpName = uniq("edms-sftp");
  const sftpDir = path.join(local, "sftp");
  const marker = "only-in-a-document-7f3a1c";
  let offsite: Record<string, unknown>;
  let lostId: string;
  let dataB: Awaited<ReturnType<typeof dbFingerprint>>;
  let treeB: ReturnType<typeof snapshotTree>;
  let programOld: ProgramRun;
  let result: Awaited<ReturnType<NonNullable<Awaited<ReturnType<typeof materialise>>["restore"]>>>;
  const offsiteKeys = [...secretKeys, "edms-backup:offsitePassword", "edms-backup:offsiteSshKey"];

  beforeAll(async () => {
    offsite = (await startSftpStore(a, sftpName, sftpDir, offsitePassword)).config;
    // The old VM is B, as the move above left it, with one more document.
    await b.must(["run", "--rm", "-v", `${names.docs}:/v`, "--entrypoint", "bash", testImage, "-c", `printf '%s\\n' "$1" > /v/late-document.txt`, "_", marker]);
    programOld = await runProgram(config(b.host, "password on B", offsite), { stack, secretKeys: offsiteKeys, askDaemons: true });
    expect(programOld.error).toBeUndefined();
    await materialise(programOld);
    const backup = await b.run(["exec", scheduler, "/opt/edms-backup/edms-backup", "backup"]);
    expect(backup.stderr).toMatch(/off-site/);
    expect(backup.code, backup.stderr).toBe(0);
    lostId = backup.stdout.trim().split("\n").pop()!;
    dataB = await dbFingerprint(pg(b), "edms");
    const out = fs.mkdtempSync(path.join(local, "old-b-"));
    await b.readVolume(names.docs, ".", out);
    treeB = snapshotTree(out);
    await mustRun("bash", [secondDaemon, "stop", bDir]);
    expect((await b.run(["info"])).code).not.toBe(0);

    // The new VM: this machine's daemon, emptied of the stack and given an empty EDMS.
    await a.removeAll({ containers: [names.app, names.db], volumes: [names.docs, names.media, names.backups], networks: [names.network] });
    await edmsOn(a, "password on the new VM");
  });

  afterAll(async () => {
    await a.removeAll({ containers: [sftpName] });
  });

  it("the old host's resources block `up` until they leave the state (runbook E), then the restore from off-site runs", async () => {
    const programNew = await runProgram(
      config(a.host, "password on the new VM", { ...offsite, "edms-backup:restore": { backupId: lostId, confirm: true, fromOffsite: true } }),
      { stack, secretKeys: offsiteKeys, askDaemons: true },
    );
    expect(programNew.error).toBeUndefined();
    // Deleting the old scheduler goes through the old host's provider, which cannot connect.
    await expect(materialise(programNew, programOld)).rejects.toThrow(/Cannot connect|docker.sock/);
    // After `pulumi state delete` of the old host's resources: the update runs on the new VM alone.
    result = await (await materialise(programNew)).restore!();
    expect(result.stderr).toMatch(new RegExp(`${lostId}.*off-site|off-site.*${lostId}`));
    expect(result.code).toBe(0);
  });

  it("brings back the database and the documents byte for byte, and every user's password verifies", async () => {
    expect(await dbFingerprint(pg(a), "edms")).toEqual(dataB);
    const out = fs.mkdtempSync(path.join(local, "new-a-"));
    await a.readVolume(names.docs, ".", out);
    expect(snapshotTree(out)).toEqual(treeB);
    const rows = (await a.psql(names.db, "SELECT username || ' ' || password FROM users_user ORDER BY id")).trim().split("\n");
    for (const [i, row] of rows.entries()) expect(djangoVerify(edmsUsers[i].password, row.split(" ")[1])).toBe(true);
    expect((await a.must(["inspect", "--format", "{{.State.Running}}", names.app])).trim()).toBe("true");
  });

  it("the off-site store holds the backup encrypted: no document's text, no secret", async () => {
    const found = await a.run(["exec", sftpName, "grep", "-r", "-l", "-F", "-e", marker, "-e", secrets.ENCRYPTION_KEY, "-e", "password on B", "/srv/repos"]);
    expect(found.code).toBe(1);
    expect(found.stdout).toBe("");
    expect((await a.must(["exec", sftpName, "ls", "/srv/repos/edms"])).split("\n")).toEqual(expect.arrayContaining(["config", "data", "keys", "snapshots"]));
    expect(result.stdout + result.stderr).not.toContain(offsitePassword);
  });
});
