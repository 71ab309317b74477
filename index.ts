// edms-backup: the stack's config (Pulumi.<stack>.yaml) declares its backups, or, with
// edms-backup:role vault, the vault of another stack on a host of its own. The stack's
// outputs are this module's exports (CommonJS: Pulumi's nodejs host reads module.exports,
// @pulumi/pulumi cmd/run/run.js), only those of its role.
import { EdmsBackup } from "./components/edmsBackup";
import { EdmsVault } from "./components/edmsVault";
import { loadSettings } from "./components/settings";
import { loadVaultSettings, stackRole } from "./components/vaultSettings";

function declare(): Record<string, unknown> {
  if (stackRole() === "vault") {
    const vault = new EdmsVault("vault", { settings: loadVaultSettings() });
    return { vaultVolume: vault.volumeName, vaultContainer: vault.containerName, listVault: vault.listCommand, vaultStatus: vault.statusCommand };
  }
  const settings = loadSettings();
  const edms = new EdmsBackup("edms", { settings });
  return {
    backupVolume: edms.volumeName,
    backupContainer: edms.containerName,
    schedule: edms.schedule,
    nextBackup: edms.nextRun,
    listBackups: edms.listCommand,
    verifyBackup: edms.verifyCommand,
    backupMetrics: edms.metricsCommand,
    restoreDrill: edms.drillCommand,
    restoring: settings.restore?.backupId ?? "",
  };
}

export = declare();
