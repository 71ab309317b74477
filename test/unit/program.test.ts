import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { destroyOutcome, envOf, named, only, parseEnvFile, runProgram, stackConfig, types, type ProgramRun } from "../support/program";
import { repoRoot, runtimeDir } from "../support/run";
import { configFolders } from "../../components/runtimeEnv";

const password = "db pass w0rd";
const withPassword = (stack: string, extra: Record<string, string> = {}): Record<string, string> => ({
  ...stackConfig(stack),
  "edms-backup:dbPassword": password,
  ...extra,
});
const secretKeys = ["edms-backup:dbPassword", "edms-backup:appSecrets"];
const yamlOf = (stack: string) => fs.readFileSync(path.join(repoRoot, `Pulumi.${stack}.yaml`), "utf8");

function providerOf(run: ProgramRun, ref?: string) {
  return run.resources.find((r) => r.type === types.provider && ref?.endsWith(`::${r.id}`));
}

describe.each(["dev", "staging", "prod"])("stack %s", (stack) => {
  it("declares the provider on dockerHost, the retained volume and the scheduled container", async () => {
    const config = withPassword(stack);
    const run = await runProgram(config, { stack, secretKeys });
    expect(run.error).toBeUndefined();
    const dockerHost = config["edms-backup:dockerHost"];

    const provider = only(run, types.provider);
    expect(provider.inputs.host).toBe(dockerHost);
    for (const r of run.resources.filter((r) => r.type.startsWith("docker:"))) {
      expect(providerOf(run, r.provider)?.name).toBe(provider.name);
    }

    const volume = named(run, types.volume, "backups");
    expect(volume.inputs.name).toBe(`edms-backups-${stack}`);
    expect(volume.options.retainOnDelete).toBe(true);
    expect(volume.options.protect).toBe(stack === "prod");

    const container = named(run, types.container, "scheduler");
    // The runtime's image is built on the target host from the configured one.
    const image = named(run, types.image, "scheduler");
    expect(image.inputs.name).toMatch(/^edms-backup-runtime:[0-9a-f]{12}$/);
    expect(image.inputs.build).toEqual({ context: path.join(repoRoot, "components", "image"), dockerfile: "Dockerfile", buildArgs: { BASE: config["edms-backup:image"] ?? "postgres:16-bookworm" } });
    expect(container.inputs.image).toBe(image.inputs.name);
    expect(container.inputs.command).toEqual(["/opt/edms-backup/edms-backup", "schedule"]);
    // Its settings in a file of mode 0600, not in the environment `docker inspect` shows.
    expect(container.inputs.envs).toEqual(["EDMS_BACKUP_ENV_FILE=/run/edms-backup/env"]);
    expect(container.secretInputs).toContain("uploads");
    expect((container.inputs.uploads as { file: string; permissions?: string }[]).find((u) => u.file === "/run/edms-backup/env")?.permissions).toBe("0600");
    expect(container.inputs.wait).toBe(true);
    expect(container.inputs.restart).toBe("unless-stopped");
    expect(container.inputs.healthcheck.tests).toEqual(["CMD", "/opt/edms-backup/edms-backup", "status"]);
    for (const key of ["interval", "timeout", "startPeriod"]) {
      expect(container.inputs.healthcheck[key]).toBe(goDuration(container.inputs.healthcheck[key]));
    }
    expect(container.inputs.labels).toContainEqual({ label: "edms-backup.stack", value: stack });
    expect(container.inputs.networksAdvanced).toEqual([{ name: config["edms-backup:network"] }]);

    const database = JSON.parse(config["edms-backup:database"]);
    const storage: string[] = JSON.parse(config["edms-backup:storageVolumes"]);
    const configPaths: string[] = JSON.parse(config["edms-backup:configPaths"] ?? "[]");
    const env = envOf(container);
    expect(env).toMatchObject({
      PGHOST: database.host,
      PGPORT: String(database.port),
      PGUSER: database.user,
      PGPASSWORD: password,
      PGDATABASE: database.name,
      EDMS_BACKUP_DIR: "/backups",
      EDMS_BACKUP_STORAGE_DIRS: storage.map((_, i) => `/edms/storage/${i + 1}`).join(":"),
      EDMS_BACKUP_CONFIG_PATHS: configPaths.join(":"),
      EDMS_BACKUP_RETENTION_DAYS: config["edms-backup:retentionDays"],
      EDMS_BACKUP_KEEP_LAST: config["edms-backup:keepLast"],
      EDMS_BACKUP_SCHEDULE: config["edms-backup:schedule"],
    });

    expect(container.inputs.mounts).toEqual([
      ...storage.map((source, i) => ({ type: "volume", source, target: `/edms/storage/${i + 1}`, readOnly: true })),
      ...configFolders(configPaths).map((source) => ({ type: "bind", source, target: `/edms/config${source}`, readOnly: true })),
      { type: "volume", source: `edms-backups-${stack}`, target: "/backups", readOnly: false },
    ]);

    // The runtime is uploaded from runtime/, every file, as it is in the repository.
    const uploads = container.inputs.uploads as { file: string; content: string; executable: boolean }[];
    const dispatcher = uploads.find((u) => u.file === "/opt/edms-backup/edms-backup");
    expect(dispatcher?.content).toBe(fs.readFileSync(path.join(runtimeDir, "edms-backup"), "utf8"));
    expect(dispatcher?.executable).toBe(true);
    for (const name of fs.readdirSync(path.join(runtimeDir, "libexec"))) {
      expect(uploads.find((u) => u.file === `/opt/edms-backup/libexec/${name}`)?.content).toBe(fs.readFileSync(path.join(runtimeDir, "libexec", name), "utf8"));
    }

    expect(run.resources.filter((r) => r.type === types.command)).toEqual([]);
    expect(run.outputs.listBackups).toBe(`docker --host ${dockerHost} exec edms-backup-${stack} /opt/edms-backup/edms-backup list`);
    expect(String(run.outputs.nextBackup)).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it("keeps the password out of the stack file and the outputs", async () => {
    const run = await runProgram(withPassword(stack), { stack, secretKeys });
    expect(run.error).toBeUndefined();
    expect(yamlOf(stack)).not.toContain(password);
    for (const value of Object.values(run.outputs)) expect(JSON.stringify(value)).not.toContain(password);
  });
});

describe("secrets", () => {
  it("reach the engine only as secrets: the container's env and the restore command's environment", async () => {
    const run = await runProgram(withPassword("dev", {
      "edms-backup:restore": JSON.stringify({ backupId: "20260104_020000", confirm: true }),
      "edms-backup:appSecrets": JSON.stringify({ SECRET_KEY: "sk-value", ENCRYPTION_KEY: "ek-value" }),
    }), { stack: "dev", secretKeys });
    expect(named(run, types.container, "scheduler").secretInputs).toEqual(["uploads"]);
    expect(only(run, types.command).secretInputs).toEqual(["environment"]);
    for (const r of run.resources) {
      const open = Object.fromEntries(Object.entries(r.inputs).filter(([k]) => !r.secretInputs.includes(k)));
      for (const value of [password, "sk-value", "ek-value"]) expect(JSON.stringify(open)).not.toContain(value);
    }
    const { loadSettings } = await import("../../components/settings");
    const settings = loadSettings(withPassword("dev"), "dev", "edms-backup", () => true);
    expect(await run.pulumi.isSecret(settings.dbPassword)).toBe(true);
    expect(await run.pulumi.isSecret(settings.appSecrets)).toBe(true);
  });

  it("passes app secrets to the runtime as EDMS_SECRET_<NAME>", async () => {
    const run = await runProgram(withPassword("staging", { "edms-backup:appSecrets": JSON.stringify({ SECRET_KEY: "sk-1", ENCRYPTION_KEY: "ek-1" }) }), { stack: "staging", secretKeys });
    expect(envOf(named(run, types.container, "scheduler"))).toMatchObject({ EDMS_SECRET_SECRET_KEY: "sk-1", EDMS_SECRET_ENCRYPTION_KEY: "ek-1" });
  });
});

describe("restore", () => {
  const restoreConfig = (restore: unknown, extra: Record<string, string> = {}) =>
    withPassword("staging", { "edms-backup:restore": JSON.stringify(restore), ...extra });

  it("declares the restore command only when asked, keyed on the backup id and request id", async () => {
    const run = await runProgram(restoreConfig({ backupId: "20260104_020000", confirm: true, withConfig: true }), { stack: "staging", secretKeys });
    expect(run.error).toBeUndefined();
    const cmd = only(run, types.command);
    expect(cmd.inputs.triggers).toEqual(["20260104_020000", "", "ssh://deploy@edms-staging.internal", ""]);
    expect(cmd.inputs.create).toBe(fs.readFileSync(path.join(repoRoot, "components", "restore.sh"), "utf8"));
    expect(cmd.inputs.interpreter).toEqual(["/bin/sh", "-c"]);
    expect(cmd.secretInputs).toContain("environment");
    expect(cmd.options.additionalSecretOutputs).toEqual(expect.arrayContaining(["stdout", "stderr"]));
    expect(cmd.inputs.update).toMatch(/already ran/);
    expect(cmd.inputs.environment).toMatchObject({
      EDMS_RESTORE_DOCKER_HOST: "ssh://deploy@edms-staging.internal",
      EDMS_RESTORE_DOCKER_SOCKET: "/var/run/docker.sock",
      EDMS_RESTORE_ID: "20260104_020000",
      EDMS_RESTORE_WITH_CONFIG: "true",
      EDMS_RESTORE_APP_CONTAINERS: "edms_staging_backend edms_staging_celery",
      EDMS_RESTORE_BACKUP_VOLUME: "edms-backups-staging",
      EDMS_RESTORE_IMAGE: named(run, types.image, "scheduler").inputs.name,
    });
    expect(cmd.inputs.environment.EDMS_RESTORE_JOB).toMatch(/^edms-backup-restore-staging-[0-9a-f]{10}$/);
    expect(parseEnvFile(cmd.inputs.environment.EDMS_RESTORE_ENV)).toMatchObject({ PGPASSWORD: password, EDMS_BACKUP_DIR: "/backups" });
    // Nothing of the runtime's settings is a variable of the command itself.
    expect(Object.keys(cmd.inputs.environment).filter((k) => !k.startsWith("EDMS_RESTORE_"))).toEqual([]);
    const again = await runProgram(restoreConfig({ backupId: "20260104_020000", confirm: true, requestId: "second" }), { stack: "staging", secretKeys });
    expect(only(again, types.command).inputs.triggers).toEqual(["20260104_020000", "second", "ssh://deploy@edms-staging.internal", ""]);
    // Another request is another job: a finished one is never reported as the new one.
    expect(only(again, types.command).inputs.environment.EDMS_RESTORE_JOB).not.toBe(cmd.inputs.environment.EDMS_RESTORE_JOB);
    // The same backupId declared against another host (a new VM) runs there.
    const moved = await runProgram(
      restoreConfig({ backupId: "20260104_020000", confirm: true, fromHost: "ssh://deploy@edms-staging.internal" }, { "edms-backup:dockerHost": "ssh://deploy@edms-new.internal" }),
      { stack: "staging", secretKeys },
    );
    expect(only(moved, types.command).inputs.triggers).toEqual(["20260104_020000", "", "ssh://deploy@edms-new.internal", "ssh://deploy@edms-staging.internal"]);
  });

  it("runs from a POSIX shell with the docker CLI only: no bash 4, no GNU tar", async () => {
    const script = fs.readFileSync(path.join(repoRoot, "components", "restore.sh"), "utf8");
    expect(script.split("\n")[0]).toBe("#!/bin/sh");
    // dash (Debian's sh) parses it; the bash and GNU-only forms macOS lacks are absent.
    const parsed = spawnSync("dash", ["-n", path.join(repoRoot, "components", "restore.sh")], { encoding: "utf8" });
    expect(parsed.status, parsed.stderr).toBe(0);
    const code = script.split("\n").filter((l) => !/^\s*#/.test(l)).join("\n");
    for (const bashism of [/\[\[/, /declare /, /\blocal /, /--transform/, /^set .*pipefail/m, /\$\{!/, /\w+=\(/, /<<</, /\$\{\w+\[/]) {
      expect(code).not.toMatch(bashism);
    }
  });

  it("uses a configured runtimeImage as it is, and the socket of a unix:// host", async () => {
    const run = await runProgram(
      restoreConfig({ backupId: "20260104_020000", confirm: true }, { "edms-backup:runtimeImage": "registry.example.org/edms-runtime:16", "edms-backup:dockerHost": "unix:///run/user/1000/docker.sock" }),
      { stack: "staging", secretKeys },
    );
    expect(run.error).toBeUndefined();
    expect(named(run, types.image, "scheduler").inputs).toMatchObject({ name: "registry.example.org/edms-runtime:16" });
    expect(named(run, types.image, "scheduler").inputs.build).toBeUndefined();
    expect(only(run, types.command).inputs.environment).toMatchObject({ EDMS_RESTORE_IMAGE: "registry.example.org/edms-runtime:16", EDMS_RESTORE_DOCKER_SOCKET: "/run/user/1000/docker.sock" });
  });

  it("restore.files (one document back): the volumes' paths as the job sees them, a new list restores again; a path outside the volumes is refused", async () => {
    const files = ["edms-staging_documents/documents/2026/01/report one.pdf", "edms-staging_media/avatars/"];
    const run = await runProgram(restoreConfig({ backupId: "20260104_020000", confirm: true, files, overwrite: true }), { stack: "staging", secretKeys });
    expect(run.error).toBeUndefined();
    const cmd = only(run, types.command);
    expect(cmd.inputs.environment).toMatchObject({
      EDMS_RESTORE_FILES: "/edms/storage/1/documents/2026/01/report one.pdf\n/edms/storage/3/avatars",
      EDMS_RESTORE_OVERWRITE: "true",
    });
    expect(cmd.inputs.triggers).toContain(JSON.stringify(files));
    // Without overwrite only what is missing or older comes back: no confirm needed; with it, confirm.
    const unconfirmed = await runProgram(restoreConfig({ backupId: "20260104_020000", files }), { stack: "staging", secretKeys });
    expect(unconfirmed.error).toBeUndefined();
    expect(only(unconfirmed, types.command).inputs.environment.EDMS_RESTORE_OVERWRITE).toBe("false");
    const overwriting = await runProgram(restoreConfig({ backupId: "20260104_020000", files, overwrite: true }), { stack: "staging", secretKeys });
    expect(overwriting.error?.message).toMatch(/edms-backup:restore\.confirm must be true/);
    const outside = await runProgram(restoreConfig({ backupId: "20260104_020000", confirm: true, files: ["/srv/edms/media/x.pdf"] }), { stack: "staging", secretKeys });
    expect(outside.error?.message).toMatch(/restore\.files names '\/srv\/edms\/media\/x\.pdf', which is not in a storage volume: start each with one of edms-staging_documents/);
    const dots = await runProgram(restoreConfig({ backupId: "20260104_020000", confirm: true, files: ["edms-staging_documents/../etc"] }), { stack: "staging", secretKeys });
    expect(dots.error?.message).toMatch(/restore\.files\.0 must be <storage volume>\/<path in it>, without \. or \.\./);
  });

  // `pulumi config set --path 'edms-backup:restore.requestId' 2` stores a number; the
  // engine hands the object over as JSON.
  it("takes values as Pulumi stores them: a numeric requestId, \"true\" strings", async () => {
    const run = await runProgram(restoreConfig({ backupId: "20260104_020000", confirm: "true", withConfig: "false", requestId: 2 }), { stack: "staging", secretKeys });
    expect(run.error).toBeUndefined();
    expect(only(run, types.command).inputs.triggers.slice(0, 2)).toEqual(["20260104_020000", "2"]);
    expect(only(run, types.command).inputs.environment.EDMS_RESTORE_WITH_CONFIG).toBe("false");
  });

  it.each([
    [{ backupId: "20260104_020000" }, /edms-backup:restore\.confirm must be true/],
    [{ backupId: "20260104_020000", confirm: false }, /edms-backup:restore\.confirm must be true/],
    [{ backupId: "yesterday", confirm: true }, /edms-backup:restore\.backupId must be a backup id, YYYYMMDD_HHMMSS/],
    [{ backupId: "20260104_020000", confirm: true, fromHost: "ftp://old" }, /edms-backup:restore\.fromHost must be the old Docker host/],
  ])("refuses %j before declaring anything", async (restore, message) => {
    const run = await runProgram(restoreConfig(restore), { stack: "staging", secretKeys });
    expect(run.error?.message).toMatch(message);
    expect(run.resources).toEqual([]);
  });
});

describe("off-site copies in the stack config", () => {
  const offsite = (extra: Record<string, string> = {}) =>
    withPassword("prod", {
      "edms-backup:offsite": JSON.stringify({ repository: "s3:https://s3.example.org/edms-bucket/prod", keepDaily: 10 }),
      "edms-backup:offsitePassword": "restic pass phrase",
      "edms-backup:offsiteEnv": JSON.stringify({ AWS_ACCESS_KEY_ID: "AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY: "s3cr3t-key" }),
      ...extra,
    });
  const offsiteSecretKeys = [...secretKeys, "edms-backup:offsitePassword", "edms-backup:offsiteEnv"];

  it("gives the scheduler restic's variables, secret, with the stack and the retention", async () => {
    const run = await runProgram(offsite(), { stack: "prod", secretKeys: offsiteSecretKeys });
    expect(run.error).toBeUndefined();
    const container = named(run, types.container, "scheduler");
    expect(container.secretInputs).toContain("uploads");
    expect(envOf(container)).toMatchObject({
      RESTIC_REPOSITORY: "s3:https://s3.example.org/edms-bucket/prod",
      RESTIC_PASSWORD: "restic pass phrase",
      AWS_ACCESS_KEY_ID: "AKIAEXAMPLE",
      AWS_SECRET_ACCESS_KEY: "s3cr3t-key",
      EDMS_BACKUP_STACK: "prod",
      EDMS_BACKUP_OFFSITE_KEEP_DAILY: "10",
      EDMS_BACKUP_OFFSITE_KEEP_WEEKLY: "4",
      EDMS_BACKUP_OFFSITE_KEEP_MONTHLY: "12",
      EDMS_BACKUP_OFFSITE_CHECK_SCHEDULE: "0 4 * * 0",
    });
    expect(JSON.stringify(run.outputs)).not.toContain("restic pass phrase");
    expect(JSON.stringify(run.outputs)).not.toContain("s3cr3t-key");
  });

  it("without offsite, no restic variable reaches the scheduler", async () => {
    const run = await runProgram(withPassword("prod"), { stack: "prod", secretKeys });
    expect(Object.keys(envOf(named(run, types.container, "scheduler"))).filter((k) => k.startsWith("RESTIC_") || k.startsWith("AWS_"))).toEqual([]);
  });

  it.each([
    [{ "edms-backup:offsitePassword": "" }, /edms-backup:offsitePassword must not be empty/],
    [{ "edms-backup:offsite": JSON.stringify({ repository: "/mnt/usb" }) }, /edms-backup:offsite\.repository must be a restic repository: s3:https/],
    [{ "edms-backup:offsite": JSON.stringify({ repository: "sftp:u@h:/r", checkSchedule: "weekly" }) }, /edms-backup:offsite\.checkSchedule 'weekly' has 1 fields/],
    [{ "edms-backup:offsite": JSON.stringify({ repository: "sftp:u@h:/r" }) }, /offsiteSshKey is required for an sftp: repository[^]*offsite\.knownHosts is required for an sftp: repository/],
    [{ "edms-backup:offsiteEnv": JSON.stringify({ "aws key": "x" }) }, /edms-backup:offsiteEnv\.aws key is not an environment variable's name/],
  ])("refuses %j with the key and how to set it", async (extra, message) => {
    const run = await runProgram(offsite(extra), { stack: "prod", secretKeys: offsiteSecretKeys });
    expect(run.error?.message).toMatch(message);
    expect(run.resources).toEqual([]);
  });

  it("a restore from off-site gets restic's variables by name, and nothing else of the operator's shell", async () => {
    const restore = JSON.stringify({ backupId: "20260104_020000", confirm: true, fromOffsite: true });
    const run = await runProgram(offsite({ "edms-backup:restore": restore }), { stack: "prod", secretKeys: offsiteSecretKeys });
    expect(run.error).toBeUndefined();
    const env = only(run, types.command).inputs.environment;
    const passed = parseEnvFile(env.EDMS_RESTORE_ENV);
    expect(Object.keys(passed)).toEqual(expect.arrayContaining(["PGPASSWORD", "RESTIC_REPOSITORY", "RESTIC_PASSWORD", "AWS_ACCESS_KEY_ID", "EDMS_BACKUP_STACK"]));
    expect(passed.AWS_SECRET_ACCESS_KEY).toBe("s3cr3t-key");
    // The script reads EDMS_RESTORE_* only, and runs docker in a closed environment.
    const script = fs.readFileSync(path.join(repoRoot, "components", "restore.sh"), "utf8");
    expect(script).toMatch(/env -i PATH=/);
    expect(script).not.toMatch(/compgen -e|PASS_VARS/);
  });

  it("refuses restore.fromOffsite without offsite, or with fromHost", async () => {
    const restore = (extra: object) => JSON.stringify({ backupId: "20260104_020000", confirm: true, fromOffsite: true, ...extra });
    const bare = await runProgram(withPassword("prod", { "edms-backup:restore": restore({}) }), { stack: "prod", secretKeys });
    expect(bare.error?.message).toMatch(/restore\.fromOffsite needs edms-backup:offsite/);
    const both = await runProgram(offsite({ "edms-backup:restore": restore({ fromHost: "ssh://old" }) }), { stack: "prod", secretKeys: offsiteSecretKeys });
    expect(both.error?.message).toMatch(/restore\.fromOffsite and restore\.fromHost name two sources/);
  });

  it("requires the repository's password once offsite is set", async () => {
    const config = Object.fromEntries(Object.entries(offsite()).filter(([k]) => k !== "edms-backup:offsitePassword"));
    const run = await runProgram(config, { stack: "prod", secretKeys: offsiteSecretKeys });
    expect(run.error?.message).toMatch(/edms-backup:offsitePassword is required when offsite is set .*pulumi config set --secret edms-backup:offsitePassword/);
  });
});

// Top-level config values reach the program as strings, whatever the YAML says.
describe("protectBackups as the engine delivers it", () => {
  it.each([
    ["prod", "false", false],
    ["prod", "true", true],
    ["dev", "true", true],
    ["dev", "false", false],
  ])("%s with protectBackups: %s protects the volume: %s", async (stack, value, protect) => {
    const run = await runProgram(withPassword(stack, { "edms-backup:protectBackups": value }), { stack, secretKeys });
    expect(run.error).toBeUndefined();
    expect(named(run, types.volume, "backups").options.protect).toBe(protect);
  });

  // Finding 8: on prod, `pulumi destroy` stops at the protected volume before its
  // retainOnDelete counts. The README's commands are what a user runs: they must work.
  it("pulumi destroy on prod: refused as it stands; after the README's commands, the backups stay on the host", async () => {
    const prod = await runProgram(withPassword("prod"), { stack: "prod", secretKeys });
    expect(destroyOutcome(prod)).toMatchObject({ failed: true, refused: [named(prod, types.volume, "backups").name] });
    const readme = fs.readFileSync(path.join(repoRoot, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("### What `pulumi up` and `pulumi destroy` do to backups"));
    const set = /pulumi config set --stack prod edms-backup:protectBackups (\S+)/.exec(section);
    expect(set?.[1]).toBe("false");
    expect(section).toMatch(/pulumi up --stack prod[^\n]*\npulumi destroy --stack prod/);
    const after = await runProgram(withPassword("prod", { "edms-backup:protectBackups": set![1] }), { stack: "prod", secretKeys });
    const outcome = destroyOutcome(after);
    expect(outcome.failed).toBe(false);
    expect(outcome.retained).toEqual([named(after, types.volume, "backups").name]);
    expect(outcome.deleted).toContain(named(after, types.container, "scheduler").name);
  });

  it("refuses anything but true or false", async () => {
    const run = await runProgram(withPassword("dev", { "edms-backup:protectBackups": "no" }), { stack: "dev", secretKeys });
    expect(run.error?.message).toMatch(/edms-backup:protectBackups must be true or false; set it with: pulumi config set edms-backup:protectBackups true/);
  });
});

describe("bad config is refused with the key and how to set it", () => {
  // Without the demo EDMS, whose database has a password of its own.
  const base = () => withPassword("dev", { "edms-backup:demo": "false" });
  const without = (key: string) => Object.fromEntries(Object.entries(base()).filter(([k]) => k !== key));
  it.each([
    ["missing dbPassword", () => without("edms-backup:dbPassword"), /edms-backup:dbPassword is required; set it with: pulumi config set --secret edms-backup:dbPassword/],
    ["missing dockerHost", () => without("edms-backup:dockerHost"), /edms-backup:dockerHost is required; set it with: pulumi config set edms-backup:dockerHost/],
    ["a dockerHost that is no URL", () => ({ ...base(), "edms-backup:dockerHost": "my-vm" }), /edms-backup:dockerHost must be unix:\/\/\/var\/run\/docker\.sock, ssh:\/\/user@host/],
    ["a database without a name", () => ({ ...base(), "edms-backup:database": JSON.stringify({ host: "db", user: "edms" }) }), /edms-backup:database\.name/],
    ["no storage volumes", () => ({ ...base(), "edms-backup:storageVolumes": "[]" }), /edms-backup:storageVolumes must name at least one Docker volume/],
    ["a cron with 4 fields", () => ({ ...base(), "edms-backup:schedule": "0 2 * *" }), /edms-backup:schedule '0 2 \* \*' has 4 fields/],
    ["a cron out of range", () => ({ ...base(), "edms-backup:schedule": "61 2 * * *" }), /edms-backup:schedule '61 2 \* \* \*' is not a valid cron expression/],
    ["a cron in another dialect (L: the scheduler would crash-loop)", () => ({ ...base(), "edms-backup:schedule": "0 2 L * *" }), /edms-backup:schedule '0 2 L \* \*' is not a valid cron expression: day-of-month field 'L' is not valid/],
    ["a drill cron in another dialect (#)", () => ({ ...base(), "edms-backup:drill": JSON.stringify({ schedule: "0 5 * * 6#1" }) }), /edms-backup:drill\.schedule '0 5 \* \* 6#1' is not a valid cron expression: day-of-week field/],
    ["a cron that never fires", () => ({ ...base(), "edms-backup:schedule": "0 2 31 2 *" }), /edms-backup:schedule '0 2 31 2 \*' never fires/],
    ["an unknown time zone", () => ({ ...base(), "edms-backup:timezone": "Mars/Olympus" }), /edms-backup:timezone 'Mars\/Olympus' is not a time zone/],
    ["negative retention", () => ({ ...base(), "edms-backup:retentionDays": "-1" }), /edms-backup:retentionDays/],
    ["keepLast 0", () => ({ ...base(), "edms-backup:keepLast": "0" }), /edms-backup:keepLast must be at least 1/],
    ["a relative config path", () => ({ ...base(), "edms-backup:configPaths": '["srv/.env"]' }), /edms-backup:configPaths\.0 must be an absolute host path/],
    ["a misspelt key", () => ({ ...base(), "edms-backup:retentiondays": "3" }), /edms-backup:retentiondays is not a setting of edms-backup: remove it/],
    ["a bad secret name", () => ({ ...base(), "edms-backup:appSecrets": '{"SECRET-KEY":"x"}' }), /edms-backup:appSecrets\.SECRET-KEY/],
  ])("%s", async (_, config, message) => {
    const run = await runProgram(config(), { stack: "dev", secretKeys });
    expect(run.error).toBeDefined();
    expect(run.error!.message).toMatch(message);
    expect(run.resources).toEqual([]);
  });

  it("names every bad key at once", async () => {
    const run = await runProgram({ ...without("edms-backup:dbPassword"), "edms-backup:keepLast": "0" }, { stack: "dev", secretKeys });
    expect(run.error!.message).toMatch(/dbPassword[\s\S]*keepLast|keepLast[\s\S]*dbPassword/);
  });
});

describe("pointing the stack at a new host", () => {
  it("declares the volume and scheduler anew on the new host, keeps the old volume while restoring from it", async () => {
    const before = await runProgram(withPassword("staging"), { stack: "staging", secretKeys });
    const after = await runProgram(withPassword("staging", { "edms-backup:dockerHost": "ssh://deploy@edms-new.internal" }), { stack: "staging", secretKeys });
    const names = (run: ProgramRun, type: string) => run.resources.filter((r) => r.type === type).map((r) => r.name);
    // New logical names on the new host: Pulumi creates them there and deletes the old
    // scheduler through the old provider; the old volume is retained (retainOnDelete).
    expect(names(after, types.provider)).not.toEqual(names(before, types.provider));
    expect(names(after, types.container)).not.toEqual(names(before, types.container));
    expect(names(after, types.volume)).not.toEqual(names(before, types.volume));
    expect(only(after, types.volume).inputs.name).toBe(only(before, types.volume).inputs.name);
    expect(only(after, types.provider).inputs.host).toBe("ssh://deploy@edms-new.internal");

    const moving = await runProgram(
      withPassword("staging", {
        "edms-backup:dockerHost": "ssh://deploy@edms-new.internal",
        "edms-backup:restore": JSON.stringify({ backupId: "20260104_020000", confirm: true, fromHost: "ssh://deploy@edms-staging.internal" }),
      }),
      { stack: "staging", secretKeys },
    );
    const volumes = moving.resources.filter((r) => r.type === types.volume);
    expect(volumes.map((v) => v.name).sort()).toEqual([...names(before, types.volume), ...names(after, types.volume)].sort());
    const oldVolume = volumes.find((v) => v.name === names(before, types.volume)[0])!;
    expect(providerOf(moving, oldVolume.provider)?.inputs.host).toBe("ssh://deploy@edms-staging.internal");
    expect(oldVolume.options.retainOnDelete).toBe(true);
    expect(moving.resources.filter((r) => r.type === types.container)).toHaveLength(1);
    expect(providerOf(moving, only(moving, types.container).provider)?.inputs.host).toBe("ssh://deploy@edms-new.internal");
    expect(only(moving, types.command).inputs.environment.EDMS_RESTORE_FROM_HOST).toBe("ssh://deploy@edms-staging.internal");
  });

  it("refuses restore.fromHost equal to dockerHost", async () => {
    const run = await runProgram(withPassword("staging", { "edms-backup:restore": JSON.stringify({ backupId: "20260104_020000", confirm: true, fromHost: "ssh://deploy@edms-staging.internal" }) }), { stack: "staging", secretKeys });
    expect(run.error?.message).toMatch(/restore\.fromHost is the same host as edms-backup:dockerHost/);
  });
});

/** A duration as Go's time.Duration String() writes it (what the docker provider reads back): 90s -> 1m30s. */
function goDuration(text: string): string {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (!m) return `not a duration: ${text}`;
  const total = Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
  const [h, min, sec] = [Math.floor(total / 3600), Math.floor((total % 3600) / 60), total % 60];
  return h > 0 ? `${h}h${min}m${sec}s` : min > 0 ? `${min}m${sec}s` : `${sec}s`;
}

describe("config paths are mounted by their folders", () => {
  // A single-file bind mount pins the inode: a file replaced by rename stays old inside.
  it("mounts each file's folder once, and no folder inside another", () => {
    expect(configFolders(["/srv/edms/.env", "/srv/edms/docker-compose.yml", "/srv/edms/nginx/site.conf", "/etc/edms/app.ini", "/srv/edms2/x"])).toEqual(["/etc/edms", "/srv/edms", "/srv/edms2"]);
    expect(configFolders(["/srv/edms/nginx"])).toEqual(["/srv/edms"]);
    expect(configFolders([])).toEqual([]);
  });

  it("refuses a config path directly under /", async () => {
    const run = await runProgram(withPassword("dev", { "edms-backup:configPaths": JSON.stringify(["/edms.env"]) }), { stack: "dev", secretKeys });
    expect(run.error?.message).toMatch(/edms-backup:configPaths\.0 is directly under \/: the scheduler mounts each config path's folder/);
  });
});

describe("the demo EDMS of the dev stack", () => {
  it("Pulumi.dev.yaml as it is declares the demo EDMS on the stack's names, without a password to set", async () => {
    const run = await runProgram(stackConfig("dev"), { stack: "dev", secretKeys });
    expect(run.error).toBeUndefined();
    const demo = run.resources.filter((r) => r.name.includes("-demo-"));
    expect(named(run, types.network, "demo").inputs.name).toBe("edms-demo");
    const db = named(run, types.container, "-db");
    expect(db.inputs.name).toBe("edms-demo-db");
    expect(db.secretInputs).toContain("envs");
    expect(db.inputs.uploads[0].file).toBe("/docker-entrypoint-initdb.d/edms-demo.sql");
    expect(db.inputs.uploads[0].content).toMatch(/CREATE TABLE users_user[\s\S]*pbkdf2_sha256\$870000\$/);
    expect(named(run, types.container, "-app").inputs.name).toBe("edms-demo-app");
    expect(demo.filter((r) => r.type === types.volume).map((r) => r.inputs.name).sort()).toEqual(["edms-demo-db-data", "edms-demo-documents", "edms-demo-media"]);
    // The scheduler starts after the demo and takes its first backup at once.
    const scheduler = named(run, types.container, "scheduler");
    expect(envOf(scheduler)).toMatchObject({ PGHOST: "edms-demo-db", EDMS_BACKUP_FIRST_AT_START: "true", PGPASSWORD: "edms-demo-password" });
    expect(run.outputs.listBackups).toBe("docker --host unix:///var/run/docker.sock exec edms-backup-dev /opt/edms-backup/edms-backup list");
    // Point-in-time recovery on: the database is made with the replication role and its
    // pg_hba.conf line (an initdb.d script), and a bound on what a slot keeps.
    expect(envOf(scheduler)).toMatchObject({ EDMS_BACKUP_PITR: "true", EDMS_BACKUP_PITR_PGUSER: "edms_replication", EDMS_BACKUP_PITR_PGPASSWORD: "edms-demo-replication" });
    const script = db.inputs.uploads[1];
    expect(script).toMatchObject({ file: "/docker-entrypoint-initdb.d/edms-demo-replication.sh", executable: true });
    expect(script.content).toContain(`host replication "edms_replication" all scram-sha-256`);
    expect(script.content).toContain(Buffer.from("edms-demo-replication").toString("base64"));
    expect(db.secretInputs).toContain("uploads");
    expect(db.inputs.command).toEqual(["postgres", "-c", "max_slot_wal_keep_size=2048MB"]);
  });

  it.each(["staging", "prod"])("%s declares none of it, and refuses demo: true", async (stack) => {
    const run = await runProgram(withPassword(stack), { stack, secretKeys });
    expect(run.error).toBeUndefined();
    expect(run.resources.filter((r) => r.name.includes("demo") || r.type === types.network)).toEqual([]);
    expect(envOf(named(run, types.container, "scheduler")).EDMS_BACKUP_FIRST_AT_START).toBeUndefined();
    const refused = await runProgram(withPassword(stack, { "edms-backup:demo": "true" }), { stack, secretKeys });
    expect(refused.error?.message).toMatch(new RegExp(`edms-backup:demo declares a demo EDMS, which the ${stack} stack never does`));
    expect(refused.resources).toEqual([]);
  });
});

describe("notifications in the stack config", () => {
  it("reach the runtime as EDMS_BACKUP_PING_URL and EDMS_BACKUP_WEBHOOK_URL, only inside the secret settings file", async () => {
    const urls = { pingUrl: "https://hc-ping.com/0f1e2d3c-token", webhookUrl: "https://hooks.example.org/edms/abc-token" };
    const run = await runProgram(withPassword("prod", { "edms-backup:notifications": JSON.stringify(urls) }), { stack: "prod", secretKeys: [...secretKeys, "edms-backup:notifications"] });
    expect(run.error).toBeUndefined();
    const scheduler = named(run, types.container, "scheduler");
    expect(envOf(scheduler)).toMatchObject({ EDMS_BACKUP_PING_URL: urls.pingUrl, EDMS_BACKUP_WEBHOOK_URL: urls.webhookUrl, EDMS_BACKUP_STACK: "prod" });
    for (const r of run.resources) {
      const open = Object.fromEntries(Object.entries(r.inputs).filter(([k]) => !r.secretInputs.includes(k)));
      expect(JSON.stringify(open)).not.toContain("token");
    }
    expect(JSON.stringify(run.outputs)).not.toContain("token");
  });

  it("refuses a URL that is not http(s)", async () => {
    const run = await runProgram(withPassword("prod", { "edms-backup:notifications": JSON.stringify({ pingUrl: "hc-ping.com/x" }) }), { stack: "prod", secretKeys });
    expect(run.error?.message).toMatch(/edms-backup:notifications\.pingUrl must be an http\(s\) URL/);
  });
});

describe("npm run edms -- --stack STACK COMMAND (scripts/edms.mjs)", () => {
  it.each(["dev", "staging", "prod"])("runs the runtime where the %s stack's own outputs say it is", async (stack) => {
    const run = await runProgram(stack === "dev" ? stackConfig("dev") : withPassword(stack), { stack, secretKeys });
    expect(run.error).toBeUndefined();
    const { dockerArgs } = await import("../../scripts/edms.mjs");
    expect(["docker", ...dockerArgs(repoRoot, stack, ["list"])].join(" ")).toBe(String(run.outputs.listBackups).replace(" exec ", " exec -i "));
    expect(dockerArgs(repoRoot, stack, ["restore", "20260104_020000", "--files", "/edms/storage/1/a b.pdf", "--yes"], { tty: true }).slice(-6))
      .toEqual(["-t", `edms-backup-${stack}`, "/opt/edms-backup/edms-backup", "restore", "20260104_020000", "--files", "/edms/storage/1/a b.pdf", "--yes"].slice(-6));
  });

  it("names the fix for a stack file that is not there, and for a vault stack", async () => {
    const { dockerArgs } = await import("../../scripts/edms.mjs");
    expect(() => dockerArgs(repoRoot, "prdo", ["list"])).toThrow(/no stack file Pulumi\.prdo\.yaml in .*: the stacks here are dev, prod, staging, vault/);
    expect(() => dockerArgs(repoRoot, "vault", ["list"])).toThrow(/vault is a vault stack/);
  });
});

describe("pinned backups in the stack config", () => {
  it("reach prune and offsite prune as EDMS_BACKUP_PINNED; an id that is not one is refused with the fix", async () => {
    const run = await runProgram(withPassword("prod", { "edms-backup:pinned": JSON.stringify(["20260104_020000", "20251231_020000"]) }), { stack: "prod", secretKeys });
    expect(run.error).toBeUndefined();
    expect(envOf(named(run, types.container, "scheduler")).EDMS_BACKUP_PINNED).toBe("20260104_020000 20251231_020000");
    const none = await runProgram(withPassword("prod"), { stack: "prod", secretKeys });
    expect(envOf(named(none, types.container, "scheduler")).EDMS_BACKUP_PINNED).toBeUndefined();
    const bad = await runProgram(withPassword("prod", { "edms-backup:pinned": JSON.stringify(["2026-01-04"]) }), { stack: "prod", secretKeys });
    expect(bad.error?.message).toMatch(/edms-backup:pinned\.0 must be a backup id, YYYYMMDD_HHMMSS/);
  });
});

describe("grandfather-father-son retention in the stack config", () => {
  it("reaches prune as EDMS_BACKUP_KEEP_DAILY/WEEKLY/MONTHLY, numbers as --path stores them", async () => {
    const run = await runProgram(withPassword("prod", { "edms-backup:retention": JSON.stringify({ keepDaily: 7, keepWeekly: "4" }) }), { stack: "prod", secretKeys });
    expect(run.error).toBeUndefined();
    expect(envOf(named(run, types.container, "scheduler"))).toMatchObject({ EDMS_BACKUP_KEEP_DAILY: "7", EDMS_BACKUP_KEEP_WEEKLY: "4", EDMS_BACKUP_KEEP_MONTHLY: "0" });
    const bad = await runProgram(withPassword("prod", { "edms-backup:retention": JSON.stringify({ keepDaily: -1 }) }), { stack: "prod", secretKeys });
    expect(bad.error?.message).toMatch(/edms-backup:retention\.keepDaily .*; set it with: pulumi config set --path 'edms-backup:retention\.keepDaily' 7/);
  });
});

describe("restore drills in the stack config", () => {
  it("run weekly by default, on the configured schedule, or not at all; outputs say how to run one and read the metrics", async () => {
    const byDefault = await runProgram(withPassword("prod"), { stack: "prod", secretKeys });
    expect(envOf(named(byDefault, types.container, "scheduler")).EDMS_BACKUP_DRILL_SCHEDULE).toBe("0 5 * * 6");
    expect(byDefault.outputs.restoreDrill).toBe("docker --host ssh://deploy@edms-prod.internal exec edms-backup-prod /opt/edms-backup/edms-backup drill");
    expect(byDefault.outputs.backupMetrics).toBe("docker --host ssh://deploy@edms-prod.internal exec edms-backup-prod /opt/edms-backup/edms-backup metrics");
    const daily = await runProgram(withPassword("prod", { "edms-backup:drill": JSON.stringify({ schedule: "30 6 * * *" }) }), { stack: "prod", secretKeys });
    expect(envOf(named(daily, types.container, "scheduler")).EDMS_BACKUP_DRILL_SCHEDULE).toBe("30 6 * * *");
    const none = await runProgram(withPassword("prod", { "edms-backup:drill": JSON.stringify({ schedule: "" }) }), { stack: "prod", secretKeys });
    expect(envOf(named(none, types.container, "scheduler")).EDMS_BACKUP_DRILL_SCHEDULE).toBe("");
    const bad = await runProgram(withPassword("prod", { "edms-backup:drill": JSON.stringify({ schedule: "weekly" }) }), { stack: "prod", secretKeys });
    expect(bad.error?.message).toMatch(/edms-backup:drill\.schedule 'weekly' has 1 fields/);
  });
});

describe("point-in-time recovery in the stack config", () => {
  const pitr = { enabled: true, replicationUser: "edms_replication", replicationPassword: "repl-s3cret-pw", baseBackupSchedule: "15 3 * * *", keepDays: "14" };

  it("turns the scheduler's receiver on, as the replication role, its password only inside the secret settings file", async () => {
    const run = await runProgram(withPassword("prod", { "edms-backup:pitr": JSON.stringify(pitr) }), { stack: "prod", secretKeys: [...secretKeys, "edms-backup:pitr"] });
    expect(run.error).toBeUndefined();
    expect(envOf(named(run, types.container, "scheduler"))).toMatchObject({
      EDMS_BACKUP_PITR: "true",
      EDMS_BACKUP_PITR_PGUSER: "edms_replication",
      EDMS_BACKUP_PITR_PGPASSWORD: "repl-s3cret-pw",
      EDMS_BACKUP_BASEBACKUP_SCHEDULE: "15 3 * * *",
      EDMS_BACKUP_STORAGE_SCHEDULE: "0 * * * *",
      EDMS_BACKUP_PITR_KEEP_DAYS: "14",
      // The app's role stays the backups' own.
      PGUSER: "edms",
    });
    for (const r of run.resources) {
      const open = Object.fromEntries(Object.entries(r.inputs).filter(([k]) => !r.secretInputs.includes(k)));
      expect(JSON.stringify(open)).not.toContain("repl-s3cret-pw");
    }
    expect(JSON.stringify(run.outputs)).not.toContain("repl-s3cret-pw");
  });

  it("is off without the block or with enabled false, and refuses a missing role or a bad schedule in one message", async () => {
    const off = await runProgram(withPassword("prod", { "edms-backup:pitr": JSON.stringify({ ...pitr, enabled: false }) }), { stack: "prod", secretKeys: [...secretKeys, "edms-backup:pitr"] });
    expect(off.error).toBeUndefined();
    expect(envOf(named(off, types.container, "scheduler")).EDMS_BACKUP_PITR).toBeUndefined();
    expect(envOf(named(off, types.container, "scheduler")).EDMS_BACKUP_PITR_PGPASSWORD).toBeUndefined();
    const noRole = await runProgram(withPassword("prod", { "edms-backup:pitr": JSON.stringify({ replicationPassword: "x" }) }), { stack: "prod", secretKeys: [...secretKeys, "edms-backup:pitr"] });
    expect(noRole.error?.message).toMatch(/edms-backup:pitr\.replicationUser is required: the role with REPLICATION/);
    expect(noRole.resources).toEqual([]);
    const badSchedule = await runProgram(withPassword("prod", { "edms-backup:pitr": JSON.stringify({ ...pitr, storageSchedule: "every hour" }) }), { stack: "prod", secretKeys: [...secretKeys, "edms-backup:pitr"] });
    expect(badSchedule.error?.message).toMatch(/edms-backup:pitr\.storageSchedule/);
    // Only the demo's role has a password of its own.
    const { replicationPassword: _, ...withoutPassword } = pitr;
    const noPassword = await runProgram(withPassword("prod", { "edms-backup:pitr": JSON.stringify(withoutPassword) }), { stack: "prod", secretKeys });
    expect(noPassword.error?.message).toMatch(/edms-backup:pitr\.replicationPassword is required \(set it with --secret\)/);
  });
});
