import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { envFileText } from "../../components/runtimeEnv";
import { edmsBackup, run, runtimeDir } from "../support/run";

// The scheduler's and the restore job's settings come in a file (mode 0600), written by
// components/runtimeEnv.ts and read by the dispatcher before any command.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edms-envfile-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text, { mode: 0o600 });
  return file;
}

describe("the runtime's settings file", () => {
  it("gives back every value the program wrote: newlines, backslashes, '=', quotes, spaces, $", async () => {
    const values = {
      PGPASSWORD: "p@ss word=with\\backslash\\n and $HOME 'quotes' \"double\" `tick`",
      EDMS_SECRET_KEY_PEM: "-----BEGIN KEY-----\nline two\\c\n-----END KEY-----",
      EMPTY: "",
    };
    const file = write("env", envFileText(values));
    const script = `source "$1/lib/envfile.sh"; load_env_file "$2"; printf '%s\\0' "$PGPASSWORD" "$EDMS_SECRET_KEY_PEM" "\${EMPTY-unset}"`;
    const result = await run("bash", ["-c", script, "_", runtimeDir, file], { env: { PGPASSWORD: "from the environment" } });
    expect(result.stderr).toBe("");
    expect(result.stdout.split("\0").slice(0, 3)).toEqual([values.PGPASSWORD, values.EDMS_SECRET_KEY_PEM, ""]);
  });

  it("is read once per process tree: a command's children inherit its settings, and the file cannot take back what a parent set for its child", async () => {
    const storage = path.join(dir, "storage");
    fs.mkdirSync(storage);
    fs.writeFileSync(path.join(storage, "doc.pdf"), "x");
    const seen = path.join(dir, "seen");
    const hook = path.join(dir, "hook");
    fs.writeFileSync(hook, `#!/bin/sh\nprintf '%s|%s\\n' "$EDMS_BACKUP_ENV_FILE" "$EDMS_BACKUP_STORAGE_DIRS" >>"${seen}"\n`, { mode: 0o755 });
    const file = write("tree", envFileText({ EDMS_BACKUP_DIR: path.join(dir, "backups"), EDMS_BACKUP_STORAGE_DIRS: storage, EDMS_BACKUP_STEP_HOOK: hook }));
    fs.mkdirSync(path.join(dir, "backups"));
    const result = await run(edmsBackup, ["storage-point"], { env: { EDMS_BACKUP_ENV_FILE: file, EDMS_BACKUP_DIR: "", EDMS_BACKUP_STORAGE_DIRS: "" } });
    expect(result.code, result.stderr).toBe(0);
    expect(fs.readFileSync(seen, "utf8").trim().split("\n")).toEqual([`|${storage}`]);
  });

  it("a missing file or a line that is not NAME=VALUE stops every command with one line", async () => {
    const missing = await run(edmsBackup, ["list"], { env: { EDMS_BACKUP_ENV_FILE: path.join(dir, "absent"), EDMS_BACKUP_DIR: dir } });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^edms-backup: EDMS_BACKUP_ENV_FILE \S+absent cannot be read: upload it \(mode 0600\) or unset EDMS_BACKUP_ENV_FILE\n$/);
    const bad = await run(edmsBackup, ["list"], { env: { EDMS_BACKUP_ENV_FILE: write("bad", "EDMS_BACKUP_DIR=/x\nnot a setting\n"), EDMS_BACKUP_DIR: dir } });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^edms-backup: line 2 of EDMS_BACKUP_ENV_FILE \S+ is not NAME=VALUE: fix or remove it\n$/);
  });

  it("its values are what the commands use", async () => {
    const backups = fs.mkdtempSync(path.join(dir, "backups-"));
    const file = write("list", envFileText({ EDMS_BACKUP_DIR: backups }));
    const listed = await run(edmsBackup, ["list"], { env: { EDMS_BACKUP_ENV_FILE: file, EDMS_BACKUP_DIR: "/does/not/exist" } });
    expect(listed.stderr).not.toMatch(/does\/not\/exist/);
    expect(listed.code).toBe(0);
  });
});
