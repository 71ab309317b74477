import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { envOf, only, runProgram, stackConfig, types, type ProgramRun } from "../support/program";
import { repoRoot, runtimeDir } from "../support/run";

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

    const volume = only(run, types.volume);
    expect(volume.inputs.name).toBe(`edms-backups-${stack}`);
    expect(volume.options.retainOnDelete).toBe(true);
    expect(volume.options.protect).toBe(stack === "prod");

    const container = only(run, types.container);
    expect(only(run, types.image).inputs.name).toBe(config["edms-backup:image"] ?? "postgres:16-bookworm");
    expect(container.inputs.image).toBe(only(run, types.image).inputs.name);
    expect(container.inputs.command).toEqual(["/opt/edms-backup/edms-backup", "schedule"]);
    expect(container.secretInputs).toContain("envs");
    expect(container.inputs.restart).toBe("unless-stopped");
    expect(container.inputs.healthcheck.tests).toEqual(["CMD", "/opt/edms-backup/edms-backup", "status"]);
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
      ...configPaths.map((source) => ({ type: "bind", source, target: `/edms/config${source}`, readOnly: true })),
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
    expect(only(run, types.container).secretInputs).toEqual(["envs"]);
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
    expect(envOf(only(run, types.container))).toMatchObject({ EDMS_SECRET_SECRET_KEY: "sk-1", EDMS_SECRET_ENCRYPTION_KEY: "ek-1" });
  });
});

describe("restore", () => {
  const restoreConfig = (restore: unknown, extra: Record<string, string> = {}) =>
    withPassword("staging", { "edms-backup:restore": JSON.stringify(restore), ...extra });

  it("declares the restore command only when asked, keyed on the backup id and request id", async () => {
    const run = await runProgram(restoreConfig({ backupId: "20260104_020000", confirm: true, withConfig: true }), { stack: "staging", secretKeys });
    expect(run.error).toBeUndefined();
    const cmd = only(run, types.command);
    expect(cmd.inputs.triggers).toEqual(["20260104_020000", ""]);
    expect(cmd.inputs.create).toBe(fs.readFileSync(path.join(repoRoot, "components", "restore.sh"), "utf8"));
    expect(cmd.inputs.interpreter).toEqual(["/bin/bash", "-c"]);
    expect(cmd.secretInputs).toContain("environment");
    expect(cmd.inputs.update).toMatch(/already ran/);
    expect(cmd.inputs.environment).toMatchObject({
      DOCKER_HOST: "ssh://deploy@edms-staging.internal",
      EDMS_RESTORE_ID: "20260104_020000",
      EDMS_RESTORE_WITH_CONFIG: "true",
      EDMS_RESTORE_APP_CONTAINERS: "edms_staging_backend edms_staging_celery",
      EDMS_RESTORE_BACKUP_VOLUME: "edms-backups-staging",
      PGPASSWORD: password,
    });
    const again = await runProgram(restoreConfig({ backupId: "20260104_020000", confirm: true, requestId: "second" }), { stack: "staging", secretKeys });
    expect(only(again, types.command).inputs.triggers).toEqual(["20260104_020000", "second"]);
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

describe("bad config is refused with the key and how to set it", () => {
  const base = () => withPassword("dev");
  const without = (key: string) => Object.fromEntries(Object.entries(base()).filter(([k]) => k !== key));
  it.each([
    ["missing dbPassword", () => without("edms-backup:dbPassword"), /edms-backup:dbPassword is required; set it with: pulumi config set --secret edms-backup:dbPassword/],
    ["missing dockerHost", () => without("edms-backup:dockerHost"), /edms-backup:dockerHost is required; set it with: pulumi config set edms-backup:dockerHost/],
    ["a dockerHost that is no URL", () => ({ ...base(), "edms-backup:dockerHost": "my-vm" }), /edms-backup:dockerHost must be unix:\/\/\/var\/run\/docker\.sock, ssh:\/\/user@host/],
    ["a database without a name", () => ({ ...base(), "edms-backup:database": JSON.stringify({ host: "db", user: "edms" }) }), /edms-backup:database\.name/],
    ["no storage volumes", () => ({ ...base(), "edms-backup:storageVolumes": "[]" }), /edms-backup:storageVolumes must name at least one Docker volume/],
    ["a cron with 4 fields", () => ({ ...base(), "edms-backup:schedule": "0 2 * *" }), /edms-backup:schedule '0 2 \* \*' has 4 fields/],
    ["a cron out of range", () => ({ ...base(), "edms-backup:schedule": "61 2 * * *" }), /edms-backup:schedule '61 2 \* \* \*' is not a valid cron expression/],
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
