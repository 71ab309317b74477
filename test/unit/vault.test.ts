import { describe, expect, it } from "vitest";
import { envOf, named, only, runProgram, stackConfig, types } from "../support/program";

// The vault stack (edms-backup:role vault, Pulumi.vault.yaml) under mocks, and the
// protected stack's restore from it.
const vaultSecrets = {
  "edms-backup:vaultPassword": "vault-only pass phrase",
  "edms-backup:sourcePassword": "prod's offsite password",
  "edms-backup:sourceEnv": JSON.stringify({ AWS_ACCESS_KEY_ID: "read-only-key", AWS_SECRET_ACCESS_KEY: "read-only-secret" }),
  "edms-backup:notifications": JSON.stringify({ webhookUrl: "https://alerts.example.org/hook?token=t0k" }),
};
const secretKeys = Object.keys(vaultSecrets);
const vaultConfig = (extra: Record<string, string> = {}) => ({ ...stackConfig("vault"), ...vaultSecrets, ...extra });

describe("the vault stack (Pulumi.vault.yaml)", () => {
  it("declares, on its own host, a retained and protected volume and the vault's container, its settings a secret file", async () => {
    const run = await runProgram(vaultConfig(), { stack: "vault", secretKeys });
    expect(run.error).toBeUndefined();
    expect(only(run, types.provider).inputs.host).toBe("ssh://admin@vault-nas.internal");
    const volume = only(run, types.volume);
    expect(volume.inputs.name).toBe("edms-vault-prod");
    expect(volume.options.retainOnDelete).toBe(true);
    expect(volume.options.protect).toBe(true);

    const container = only(run, types.container);
    expect(container.inputs.name).toBe("edms-vault-prod");
    expect(container.inputs.command).toEqual(["/opt/edms-backup/edms-backup", "vault", "schedule"]);
    expect(container.inputs.mounts).toEqual([{ type: "volume", source: "edms-vault-prod", target: "/vault", readOnly: false }]);
    expect(container.inputs.envs).toEqual(["EDMS_BACKUP_ENV_FILE=/run/edms-backup/env"]);
    expect(container.secretInputs).toEqual(["uploads"]);
    expect(container.inputs.healthcheck.tests).toEqual(["CMD", "/opt/edms-backup/edms-backup", "vault", "status"]);
    const env = envOf(container);
    expect(env).toMatchObject({
      RESTIC_REPOSITORY: "/vault/repository",
      RESTIC_PASSWORD: "vault-only pass phrase",
      RESTIC_FROM_REPOSITORY: "s3:https://s3.example.org/edms-backups/prod",
      RESTIC_FROM_PASSWORD: "prod's offsite password",
      AWS_ACCESS_KEY_ID: "read-only-key",
      EDMS_BACKUP_DIR: "/vault",
      EDMS_BACKUP_STACK: "prod",
      EDMS_BACKUP_SCHEDULE: "0 2 * * *",
      EDMS_BACKUP_VAULT_SCHEDULE: "0 * * * *",
      EDMS_BACKUP_VAULT_KEEP_DAYS: "90",
      EDMS_BACKUP_VAULT_KEEP_MONTHLY: "12",
      EDMS_BACKUP_OFFSITE_KEEP_DAILY: "7",
      EDMS_BACKUP_WEBHOOK_URL: "https://alerts.example.org/hook?token=t0k",
    });
    // Its outputs are the vault's; no secret in them or in any other input.
    expect(Object.keys(run.outputs).sort()).toEqual(["listVault", "vaultContainer", "vaultStatus", "vaultVolume"]);
    const visible = JSON.stringify([run.outputs, run.resources.map((r) => ({ ...r.inputs, uploads: undefined }))]);
    for (const secret of ["vault-only pass phrase", "prod's offsite password", "read-only-secret", "t0k"]) expect(visible).not.toContain(secret);
    expect(run.outputs.listVault).toBe("docker --host ssh://admin@vault-nas.internal exec edms-vault-prod /opt/edms-backup/edms-backup vault list");
  });

  it("refuses a config it cannot run, naming every key and how to set it", async () => {
    const run = await runProgram(
      { ...stackConfig("vault"), "edms-backup:source": JSON.stringify({ stack: "prod", repository: "sftp:backup@store:/srv/prod" }), "edms-backup:keepDays": "0", "edms-backup:syncSchedule": "0 * * * 5L", "edms-backup:retentionDays": "7" },
      { stack: "vault", secretKeys },
    );
    const message = run.error?.message ?? "";
    expect(message).toMatch(/the stack config of the vault stack vault is not valid/);
    expect(message).toMatch(/edms-backup:vaultPassword .*set it with: pulumi config set --secret edms-backup:vaultPassword/);
    expect(message).toMatch(/edms-backup:sourcePassword /);
    expect(message).toMatch(/edms-backup:keepDays .*>=1|edms-backup:keepDays .*1/);
    expect(message).toMatch(/edms-backup:retentionDays is not a setting of a vault stack/);
    expect(run.resources.filter((r) => r.type.startsWith("docker:"))).toEqual([]);

    const sftp = await runProgram(vaultConfig({ "edms-backup:source": JSON.stringify({ stack: "prod", repository: "sftp:backup@store:/srv/prod" }), "edms-backup:syncSchedule": "0 * * * 5L" }), { stack: "vault", secretKeys });
    expect(sftp.error?.message).toMatch(/edms-backup:sourceSshKey is required for an sftp: source/);
    expect(sftp.error?.message).toMatch(/edms-backup:source\.knownHosts is required/);
    expect(sftp.error?.message).toMatch(/edms-backup:syncSchedule .*5L/);
  });

  it("a vault names another stack as its source, never itself", async () => {
    const run = await runProgram(vaultConfig({ "edms-backup:source": JSON.stringify({ stack: "vault", repository: "s3:https://s3.example.org/b/x" }) }), { stack: "vault", secretKeys });
    expect(run.error?.message).toMatch(/names itself as its source: set edms-backup:source\.stack to the protected stack/);
  });
});

describe("the protected stack's restore from its vault", () => {
  const prod = (restore: object) => ({ ...stackConfig("prod"), "edms-backup:dbPassword": "pw", "edms-backup:restore": JSON.stringify({ backupId: "20260104_020000", confirm: true, ...restore }) });

  it("names the vault's host and container to the restore command, and nothing of the vault's secrets", async () => {
    const run = await runProgram(prod({ fromVault: "ssh://admin@vault-nas.internal" }), { stack: "prod", secretKeys: ["edms-backup:dbPassword"] });
    expect(run.error).toBeUndefined();
    const command = named(run, types.command, "restore");
    expect(command.inputs.environment).toMatchObject({ EDMS_RESTORE_FROM_VAULT: "ssh://admin@vault-nas.internal", EDMS_RESTORE_VAULT_CONTAINER: "edms-vault-prod" });
    expect(command.inputs.triggers).toContain("ssh://admin@vault-nas.internal");
    expect(command.inputs.environment.EDMS_RESTORE_ENV).not.toMatch(/RESTIC_FROM|VAULT/);
  });

  it("refuses a second source, and the stack's own host as the vault's", async () => {
    const both = await runProgram(prod({ fromVault: "ssh://admin@vault-nas.internal", fromHost: "ssh://deploy@old-vm" }), { stack: "prod", secretKeys: ["edms-backup:dbPassword"] });
    expect(both.error?.message).toMatch(/restore\.fromHost and restore\.fromVault name two sources: keep one/);
    const self = await runProgram(prod({ fromVault: "ssh://deploy@edms-prod.internal" }), { stack: "prod", secretKeys: ["edms-backup:dbPassword"] });
    expect(self.error?.message).toMatch(/restore\.fromVault is this stack's own dockerHost/);
  });
});
