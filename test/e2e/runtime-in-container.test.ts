import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { DockerHost, testImage, uniq } from "../support/docker";
import { edmsSchemaSql, makeStorageTree, snapshotTree } from "../support/fixtures";
import { dbFingerprint, type PgExec } from "../support/pg";
import { lastLine, runtimeDir } from "../support/run";

// edms-backup inside a container of the test image (what the official postgres image
// holds), backing up a PostgreSQL container and two storage volumes over a Docker network.
const docker = new DockerHost();
const network = uniq("edms-net");
const db = uniq("edms-db");
const db2 = uniq("edms-db2");
const volumes = { docs: uniq("edms-docs"), media: uniq("edms-media"), backups: uniq("edms-backups") };
const local = fs.mkdtempSync(path.join(os.tmpdir(), "edms-e2e-"));
const trees: Record<string, ReturnType<typeof snapshotTree>> = {};

const inContainer = (container: string): PgExec => (program, args, input) =>
  docker.must(["exec", "-i", container, program, "-U", "edms", ...args], input);

function backupRun(args: string[]): Promise<string> {
  return docker.must([
    "run", "--rm", "--network", network,
    "-v", `${runtimeDir}:/opt/edms-backup:ro`,
    "-v", `${volumes.docs}:/edms/storage/1:ro`, "-v", `${volumes.media}:/edms/storage/2:ro`,
    "-v", `${volumes.backups}:/backups`,
    "-e", `PGHOST=${db}`, "-e", "PGUSER=edms", "-e", "PGPASSWORD=pw in container", "-e", "PGDATABASE=edms",
    "-e", "EDMS_BACKUP_DIR=/backups", "-e", "EDMS_BACKUP_STORAGE_DIRS=/edms/storage/1:/edms/storage/2",
    testImage, "/opt/edms-backup/edms-backup", ...args,
  ]);
}

beforeAll(async () => {
  await docker.must(["network", "create", network]);
  await docker.startPostgres(db, network, "pw in container");
  await docker.psql(db, edmsSchemaSql(2));
  for (const [name, volume] of Object.entries({ docs: volumes.docs, media: volumes.media })) {
    const dir = path.join(local, name);
    await makeStorageTree(dir, name);
    trees[name] = snapshotTree(dir);
    await docker.must(["volume", "create", volume]);
    await docker.fillVolume(volume, dir);
  }
});

afterAll(async () => {
  await docker.removeAll({ containers: [db, db2], volumes: Object.values(volumes), networks: [network] });
  fs.rmSync(local, { recursive: true, force: true });
});

it("backs up a PostgreSQL container and storage volumes; stock tools restore them byte for byte", async () => {
  const source = await dbFingerprint(inContainer(db), "edms");
  const id = lastLine(await backupRun(["backup"]));
  expect(id).toMatch(/^\d{8}_\d{6}$/);
  expect(await backupRun(["list"])).toMatch(new RegExp(`^${id} `));
  await backupRun(["verify", id]);

  // Storage: the volumes' trees come back exactly from the backup's folders.
  for (const [i, name] of ["docs", "media"].entries()) {
    const out = path.join(local, `restored-${name}`);
    fs.mkdirSync(out);
    await docker.readVolume(volumes.backups, `${id}/storage-${i + 1}`, out);
    expect(snapshotTree(out)).toEqual(trees[name]);
  }

  // Database: stock pg_restore into a new, empty PostgreSQL container.
  await docker.startPostgres(db2, network, "another password");
  await docker.must([
    "run", "--rm", "--network", network, "-v", `${volumes.backups}:/backups:ro`,
    "-e", "PGPASSWORD=another password", testImage,
    "pg_restore", "-h", db2, "-U", "edms", "-d", "edms", "--no-owner", "--exit-on-error", `/backups/${id}/db`,
  ]);
  expect(await dbFingerprint(inContainer(db2), "edms")).toEqual(source);
});

it("refuses a wrong password in one line, leaving the earlier backup as it was", async () => {
  const before = await backupRun(["list"]);
  const result = await docker.run([
    "run", "--rm", "--network", network, "-v", `${runtimeDir}:/opt/edms-backup:ro`, "-v", `${volumes.backups}:/backups`,
    "-e", `PGHOST=${db}`, "-e", "PGUSER=edms", "-e", "PGPASSWORD=wrong", "-e", "PGDATABASE=edms", "-e", "EDMS_BACKUP_DIR=/backups",
    testImage, "/opt/edms-backup/edms-backup", "backup",
  ]);
  expect(result.code).not.toBe(0);
  expect(result.stderr.trim().split("\n")).toEqual([expect.stringMatching(/wrong password or not allowed for edms@edms-db-\w+:5432\/edms/)]);
  expect(await backupRun(["list"])).toBe(before);
});
