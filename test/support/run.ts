import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const repoRoot = path.resolve(__dirname, "../..");
export const runtimeDir = path.join(repoRoot, "runtime");
export const edmsBackup = path.join(runtimeDir, "edms-backup");

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  input?: string | Buffer;
  cwd?: string;
  /** Run as this system user (runuser), to test what root could always do. */
  user?: string;
}

/** Runs a program to its end; never throws on a non-zero exit (tests look at `code`). */
export function run(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, ...options.env })) {
    if (value !== undefined) env[key] = value;
  }
  let program = cmd;
  let argv = args;
  let cwd = options.cwd;
  if (options.user) {
    program = "runuser";
    argv = ["-u", options.user, "--", "env", ...Object.entries(env).map(([k, v]) => `${k}=${v}`), reachableByAll(cmd), ...args];
    cwd ??= "/";
  }
  return new Promise((resolve, reject) => {
    const child = spawn(program, argv, { env, cwd, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d) => out.push(d));
    child.stderr.on("data", (d) => err.push(d));
    child.on("error", reject);
    child.on("close", (code, signal) =>
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      }),
    );
    // A program that does not read its input closes the pipe early: not an error here.
    child.stdin.on("error", () => {});
    child.stdin.end(options.input ?? "");
  });
}

/** Like run, but throws with the program's stderr when it fails. */
export async function mustRun(cmd: string, args: string[], options: RunOptions = {}): Promise<string> {
  const result = await run(cmd, args, options);
  if (result.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} exited ${result.code}:\n${result.stderr}${result.stdout}`);
  }
  return result.stdout;
}

/** The id a backup printed: its last line of stdout. */
export function lastLine(stdout: string): string {
  const lines = stdout.trim().split("\n");
  return lines[lines.length - 1];
}

let runtimeCopy: string | undefined = process.env.EDMS_TEST_RUNTIME_COPY;

/**
 * The copy of runtime/ for other users, made once for a whole run by the runtime suite's
 * setup (its test files inherit the variable); returns the teardown that removes it.
 */
export function shareRuntimeCopy(): () => void {
  const dir = copyRuntime();
  process.env.EDMS_TEST_RUNTIME_COPY = path.join(dir, "runtime");
  return () => fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * CMD, or for a program of runtime/ the same program in a copy every user can read: the
 * checkout may sit in a folder other users cannot enter (root's home, a mktemp -d).
 */
function reachableByAll(cmd: string): string {
  if (!cmd.startsWith(runtimeDir + path.sep)) return cmd;
  if (!runtimeCopy) {
    // Without the suite's setup: a copy of this process's own.
    const dir = copyRuntime();
    runtimeCopy = path.join(dir, "runtime");
    process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return path.join(runtimeCopy, path.relative(runtimeDir, cmd));
}

function copyRuntime(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edms-runtime-"));
  fs.chmodSync(dir, 0o755);
  fs.cpSync(runtimeDir, path.join(dir, "runtime"), { recursive: true });
  return dir;
}
