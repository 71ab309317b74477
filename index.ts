// edms-backup: the stack's config (Pulumi.<stack>.yaml) declares its backups.
import { EdmsBackup } from "./components/edmsBackup";
import { loadSettings } from "./components/settings";

const settings = loadSettings();
const edms = new EdmsBackup("edms", { settings });

export const backupVolume = edms.volumeName;
export const backupContainer = edms.containerName;
export const schedule = edms.schedule;
export const nextBackup = edms.nextRun;
export const listBackups = edms.listCommand;
export const verifyBackup = edms.verifyCommand;
export const backupMetrics = edms.metricsCommand;
export const restoreDrill = edms.drillCommand;
export const restoring = settings.restore?.backupId ?? "";
