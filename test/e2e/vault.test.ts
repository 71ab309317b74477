import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DockerHost, testImage, uniq } from "../support/docker";
import { djangoVerify, edmsSchemaSql, edmsUsers, makeStorageTree, snapshotTree } from "../support/fixtures";
import { materialise } from "../support/materialise";
import { dbFingerprint, type PgExec } from "../support/pg";
import { encodeConfig, runProgram, type ProgramRun } from "../support/program";
import { mustRun, repoRoot } from "../support/run";
import { startSftpStore, type SftpStore } from "../support/sftp";

// Ransomware: the VM (this machine's daemon, A) pushes its backups off-site (sftp, in a
// container on A's bridge); the vault stack runs on a host of its own (a second daemon, B)
// and pulls them. Then an attacker with everything the VM has destroys every copy the VM
// can reach; the vault keeps its own, tells, and a new VM restores from it.
const bDir = fs.mkdtempSync(path.join(os.tmpdir(), "edms-vault-b-"));
const secondDaemon = path.join(repoRoot, "test", "bed", "second-dockerd.sh");
const a = new DockerHost("unix:///var/run/docker.sock");
let b: DockerHost;

const stack = uniq("vmv");
const vaultStack = `vault-${stack}`;
const names = { network: uniq("edms-net"), db: uniq("edms-db"), app: uniq("edms-app"), docs: uniq("edms-docs"), media: uniq("edms-media"), backups: uniq("edms-backups") };
const vaultNet = uniq("vault-net");
const receiver = uniq("vault-receiver");
const sftpName = uniq("edms-sftp");
const scheduler = `edms-backup-${stack}`;
const vault = `edms-vault-${stack}`;
const local = fs.mkdtempSync(path.join(os.tmpdir(), "edms-vault-e2e-"));
const offsitePassword = "the VM's restic pass phrase";
const vaultPassword = "VAULT-ONLY-7c1e9b4d2a";
const secrets = { SECRET_KEY: "django-secret-v", ENCRYPTION_KEY: "files-key-v" };
const vmKeys = ["edms-backup:dbPassword", "edms-backup:appSecrets", "edms-backup:offsitePassword", "edms-backup:offsiteSshKey"];

const pg: PgExec = (program, args, input) => a.must(["exec", "-i", names.db, program, "-U", "edms", ...args], input);
let sftp: SftpStore;
let vmProgram: ProgramRun;
let vaultProgram: ProgramRun;
const ids: string[] = [];
let data: Awaited<ReturnType<typeof dbFingerprint>>;
let docs: ReturnType<typeof snapshotTree>;
let vaultKey: string;
/** A line of the vault's private key that no other key shares. */
const keyLine = () => vaultKey.split("\n")[2];

function vmConfig(password: string, extra: Record<string, unknown> = {}): Record<string, string> {
  return encodeConfig({
    "edms-backup:dockerHost": a.host,
    "edms-backup:network": names.network,
    "edms-backup:database": { host: names.db, port: 5432, name: "edms", user: "edms" },
    "edms-backup:dbPassword": password,
    "edms-backup:storageVolumes": [names.docs, names.media],
    "edms-backup:schedule": "0 2 * * *",
    "edms-backup:image": testImage,
    "edms-backup:appContainers": [names.app],
    "edms-backup:backupVolume": names.backups,
    "edms-backup:appSecrets": secrets,
    ...sftp.config,
    ...extra,
  });
}

async function edmsOn(password: string): Promise<void> {
  await a.must(["network", "create", names.network]);
  await a.startPostgres(names.db, names.network, password);
  await a.must(["volume", "create", names.docs]);
  await a.must(["volume", "create", names.media]);
  await a.must(["run", "-d", "--name", names.app, "--network", names.network, "--entrypoint", "sleep", testImage, "infinity"]);
}

/** The webhook events the receiver on the vault's host got. */
async function received(): Promise<{ event: string; alarms?: string[]; error?: string }[]> {
  const log = await b.run(["exec", receiver, "cat", "/tmp/requests"]);
  return log.stdout.trim().split("\n").filter(Boolean).map((line) => JSON.parse(Buffer.from(line.split(" ")[2] ?? "", "base64").toString()));
}

async function vaultIds(): Promise<string[]> {
  const list = await b.must(["exec", vault, "/opt/edms-backup/edms-backup", "vault", "list"]);
  return list.trim().split("\n").filter(Boolean).map((l) => l.split(/\s+/)[0]).sort();
}

beforeAll(async () => {
  // Bridge and address pool 1: the migration test's second daemon (0) may run at the same time.
  b = new DockerHost((await mustRun("bash", [secondDaemon, "start", bDir, "1"])).trim());
  sftp = await startSftpStore(a, sftpName, path.join(local, "sftp"), offsitePassword);
  await edmsOn("password on the VM");
  await a.psql(names.db, edmsSchemaSql(1));
  for (const [name, volume] of [["docs", names.docs], ["media", names.media]]) {
    const dir = path.join(local, name);
    await makeStorageTree(dir, name);
    await a.fillVolume(volume, dir);
  }

  // The VM's stack, as it runs: two backups, both off-site.
  vmProgram = await runProgram(vmConfig("password on the VM"), { stack, secretKeys: vmKeys, askDaemons: true });
  expect(vmProgram.error).toBeUndefined();
  await materialise(vmProgram);
  for (let i = 0; i < 2; i++) {
    await a.must(["exec", names.db, "psql", "-U", "edms", "-d", "edms", "-c", `UPDATE documents_document SET title = title || ' night ${i}' WHERE id % 4 = ${i}`]);
    const out = await a.must(["exec", scheduler, "/opt/edms-backup/edms-backup", "backup"]);
    ids.push(out.trim().split("\n").pop()!);
  }
  data = await dbFingerprint(pg, "edms");
  const out = fs.mkdtempSync(path.join(local, "docs-"));
  await a.readVolume(names.docs, ".", out);
  docs = snapshotTree(out);

  // The vault's host: a receiver for its webhook, and the vault stack.
  // The vault reads the store with a key of its own, which the VM never holds.
  await mustRun("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "vault", "-f", path.join(local, "vault-key")]);
  vaultKey = fs.readFileSync(path.join(local, "vault-key"), "utf8");
  await a.must(["exec", "-i", sftpName, "sh", "-c", "cat >> /etc/edms-sftp/authorized_keys"], fs.readFileSync(path.join(local, "vault-key.pub"), "utf8"));
  await b.must(["network", "create", vaultNet]);
  await b.must(["create", "--name", receiver, "--network", vaultNet, "--entrypoint", "socat", testImage,
    "TCP-LISTEN:8080,reuseaddr,fork", "EXEC:bash /usr/local/bin/http-receiver.sh /tmp/requests"]);
  await b.must(["cp", path.join(repoRoot, "test", "bed", "http-receiver.sh"), `${receiver}:/usr/local/bin/http-receiver.sh`]);
  await b.must(["start", receiver]);
  vaultProgram = await runProgram(
    encodeConfig({
      "edms-backup:role": "vault",
      "edms-backup:dockerHost": b.host,
      "edms-backup:source": { stack, repository: sftp.repository, schedule: "0 2 * * *", knownHosts: sftp.knownHosts },
      "edms-backup:vaultPassword": vaultPassword,
      "edms-backup:sourcePassword": offsitePassword,
      "edms-backup:sourceSshKey": vaultKey,
      "edms-backup:image": testImage,
      "edms-backup:network": vaultNet,
      "edms-backup:notifications": { webhookUrl: `http://${receiver}:8080/vault` },
    }),
    { stack: vaultStack, secretKeys: ["edms-backup:vaultPassword", "edms-backup:sourcePassword", "edms-backup:sourceSshKey", "edms-backup:notifications"] },
  );
  expect(vaultProgram.error).toBeUndefined();
  await materialise(vaultProgram);
  // The vault syncs when it starts.
  for (let i = 0; i < 120 && (await received()).filter((e) => e.event === "vault.synced").length === 0; i++) await new Promise((r) => setTimeout(r, 1000));
}, 600_000);

afterAll(async () => {
  await a.removeAll({ containers: [scheduler, names.app, names.db, sftpName], volumes: [names.docs, names.media, names.backups], networks: [names.network] });
  if (b) await b.removeAll({ containers: [vault, receiver], volumes: [`edms-vault-${stack}`], networks: [vaultNet] });
  await mustRun("bash", [secondDaemon, "stop", bDir]).catch(() => undefined);
  fs.rmSync(bDir, { recursive: true, force: true });
  fs.rmSync(local, { recursive: true, force: true });
});

describe("a vault the protected VM cannot erase", () => {
  let attack: string;

  it("the vault stack pulls the VM's off-site backups on its own host, with its own password", async () => {
    expect((await received()).map((e) => e.event)).toContain("vault.synced");
    expect(await vaultIds()).toEqual(ids);
    // Its settings are in a file of mode 0600, not in what `docker inspect` shows.
    expect(await b.must(["inspect", vault])).not.toContain(vaultPassword);
  });

  it("nothing of the vault is on the VM: its scheduler's settings and every file there are searched for the vault's password and key", async () => {
    const env = await a.must(["exec", scheduler, "cat", "/run/edms-backup/env"]);
    expect(env).toMatch(/RESTIC_REPOSITORY=sftp:/);
    expect(keyLine().length).toBeGreaterThan(40);
    for (const secret of [vaultPassword, keyLine()]) {
      expect(env).not.toContain(secret);
      const found = await a.run(["exec", scheduler, "grep", "-r", "-l", "-s", "-F", secret, "/", "--exclude-dir=proc", "--exclude-dir=sys", "--exclude-dir=dev"]);
      expect(found.stdout).toBe("");
      expect(found.code).toBe(1);
      for (const name of [scheduler, names.app, names.db]) expect(await a.must(["inspect", name])).not.toContain(secret);
      // The VM's stack never declares anything of the vault either.
      expect(JSON.stringify(vmProgram.resources)).not.toContain(secret);
    }
    // The check finds what is there: the VM's own repository password is in its settings file.
    expect((await a.run(["exec", scheduler, "grep", "-r", "-l", "-s", "-F", offsitePassword, "/run"])).stdout).toContain("/run/edms-backup/env");
  });

  it("an attacker with the VM's settings, root and the Docker socket deletes every backup it reaches and forges snapshots; the vault keeps every one, alarms, and checks whole", async () => {
    // Run in the VM's scheduler (root, its settings file, its restic and ssh key).
    const script = `
      set -euo pipefail
      source /opt/edms-backup/lib/envfile.sh && load_env_file /run/edms-backup/env
      printf '%s\\n' "$EDMS_BACKUP_OFFSITE_SSH_KEY_CONTENT" > /tmp/k && chmod 600 /tmp/k
      printf '%s\\n' "$EDMS_BACKUP_OFFSITE_KNOWN_HOSTS_CONTENT" > /tmp/kh
      export EDMS_BACKUP_OFFSITE_SSH_KEY=/tmp/k EDMS_BACKUP_OFFSITE_KNOWN_HOSTS=/tmp/kh PATH=/opt/edms-backup/share/offsite-ssh:$PATH
      find /backups -mindepth 1 -delete
      restic --no-cache forget --prune $(restic --no-cache snapshots --json | jq -r '.[].id')
      hostport=\${RESTIC_REPOSITORY#sftp://root@}; hostport=\${hostport%%/*}
      ssh -n -p "\${hostport##*:}" "root@\${hostport%:*}" 'rm -rf /srv/repos/edms'
      restic --no-cache init
      mkdir -p /tmp/forged && echo forged > /tmp/forged/manifest.json && cd /tmp/forged
      TZ=UTC restic --no-cache backup . --host "edms-$EDMS_BACKUP_STACK" --time '2031-01-01 02:00:00' --tag edms-backup --tag "stack=$EDMS_BACKUP_STACK" --tag id=20310101_020000
      restic --no-cache backup . --host intruder --tag edms-backup
    `;
    attack = await a.must(["exec", "-i", scheduler, "bash", "-s"], script);
    expect(attack).toMatch(/created restic repository/);
    expect((await a.must(["exec", scheduler, "ls", "-A", "/backups"])).trim()).toBe("");

    const sync = await b.run(["exec", vault, "/opt/edms-backup/edms-backup", "vault", "sync"]);
    expect(sync.code).toBe(1);
    expect(sync.stderr, attack).toMatch(/the source repository sftp:.* is [0-9a-f]{8}, not [0-9a-f]{8} which the vault copied from: it was replaced/);
    let alarm: { event: string; error?: string } | undefined;
    for (let i = 0; i < 50 && !alarm; i++) {
      alarm = (await received()).find((e) => e.event === "vault.failed");
      if (!alarm) await new Promise((r) => setTimeout(r, 200));
    }
    expect(alarm?.error).toMatch(/it was replaced/);
    expect(await vaultIds()).toEqual(ids);
    const check = await b.run(["exec", vault, "bash", "-c", "source /opt/edms-backup/lib/envfile.sh && load_env_file /run/edms-backup/env && restic --no-cache check --read-data"]);
    expect(check.code, check.stderr).toBe(0);
  });

  it("a new VM restores the last good backup from the vault with one stack operation: byte-identical, every user logs in with the old password", async () => {
    // The new VM: this daemon emptied of the compromised one, an empty EDMS with a new password.
    await a.removeAll({ containers: [scheduler, names.app, names.db], volumes: [names.docs, names.media, names.backups], networks: [names.network] });
    await edmsOn("password on the new VM");
    const program = await runProgram(vmConfig("password on the new VM", { "edms-backup:restore": { backupId: ids[1], confirm: true, fromVault: b.host } }), { stack, secretKeys: vmKeys, askDaemons: true });
    expect(program.error).toBeUndefined();
    const result = await (await materialise(program)).restore!();
    expect(result.stderr).toMatch(new RegExp(`copying backup ${ids[1]} from the vault`));
    expect(result.code, result.stderr).toBe(0);
    expect(await dbFingerprint(pg, "edms")).toEqual(data);
    const out = fs.mkdtempSync(path.join(local, "restored-"));
    await a.readVolume(names.docs, ".", out);
    expect(snapshotTree(out)).toEqual(docs);
    const rows = (await a.psql(names.db, "SELECT username || ' ' || password FROM users_user ORDER BY id")).trim().split("\n");
    for (const [i, row] of rows.entries()) expect(djangoVerify(edmsUsers[i].password, row.split(" ")[1])).toBe(true);
    // The vault's password reached neither the restore's report nor the new VM.
    expect(result.stdout + result.stderr).not.toContain(vaultPassword);
    expect(JSON.stringify(program.resources)).not.toContain(vaultPassword);
    expect(attack).not.toContain(vaultPassword);
  });
});
