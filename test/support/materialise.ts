import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawn } from "node:child_process";
import * as crypto from "node:crypto";
import { DockerHost } from "./docker";
import { types, type Declared, type ProgramRun } from "./program";
import { mustRun, type RunResult } from "./run";

/** A declared restore command, started as the engine starts it. */
export interface RunningCommand {
  result: Promise<RunResult>;
  /** What a cancelled `pulumi up` does to it: SIGKILL to the command's own process. */
  kill(): void;
  pid: number;
}

/**
 * Creates on real Docker daemons what the program declared under mocks: the same image,
 * env, mounts, uploads, network, labels, healthcheck and command, through the docker CLI
 * of the host each resource's provider names. A declared restore command is returned as
 * a function that runs its script with its environment. Existing volumes are left as they
 * are, and so are containers whose declared inputs did not change (the engine replaces
 * those that changed).
 */
export async function materialise(
  program: ProgramRun,
  previous?: ProgramRun,
): Promise<{ restore?: () => Promise<RunResult>; startRestore?: () => RunningCommand; retained: string[]; deleted: string[] }> {
  const hosts = new Map<string, DockerHost>();
  for (const provider of [...(previous?.resources ?? []), ...program.resources].filter((r) => r.type === types.provider)) {
    hosts.set(provider.id, new DockerHost(provider.inputs.host));
  }
  const hostOf = (r: Declared): DockerHost => {
    const host = [...hosts.entries()].find(([id]) => r.provider?.endsWith(`::${id}`))?.[1];
    if (!host) throw new Error(`${r.name}: no docker provider declared for it`);
    return host;
  };

  let startRestore: (() => RunningCommand) | undefined;
  for (const r of program.resources) {
    switch (r.type) {
      case types.volume: {
        const host = hostOf(r);
        if (!(await host.exists("volume", r.inputs.name))) {
          await host.must(["volume", "create", ...labels(r), r.inputs.name]);
        }
        break;
      }
      case types.image: {
        const host = hostOf(r);
        if (await host.exists("image", r.inputs.name)) break;
        const build = r.inputs.build as { context: string; dockerfile?: string; buildArgs?: Record<string, string> } | undefined;
        if (!build) {
          await host.must(["pull", r.inputs.name]);
          break;
        }
        // Built by the target host's daemon from the context sent to it, as the provider
        // does through the API's classic builder (resource_docker_image_funcs.go).
        const args = ["build", "--quiet", "-t", r.inputs.name, "-f", path.join(build.context, build.dockerfile ?? "Dockerfile")];
        for (const [k, v] of Object.entries(build.buildArgs ?? {})) args.push("--build-arg", `${k}=${v}`);
        await mustRun("docker", [...args, build.context], { env: { ...host.env, DOCKER_BUILDKIT: "0" } });
        break;
      }
      case types.network: {
        const host = hostOf(r);
        if (!(await host.exists("network", r.inputs.name))) await host.must(["network", "create", ...labels(r), r.inputs.name]);
        break;
      }
      case types.container:
        await createContainer(hostOf(r), r);
        break;
      case types.command:
        startRestore = () => startCommand(r);
        break;
    }
  }

  // What the previous run declared and this one does not, the engine deletes through the
  // provider recorded for it, unless it is retained on delete.
  const retained: string[] = [];
  const deleted: string[] = [];
  const declared = new Set(program.resources.map((r) => `${r.type}::${r.name}`));
  for (const r of previous?.resources ?? []) {
    if (declared.has(`${r.type}::${r.name}`) || r.type === types.provider) continue;
    if (r.options.retainOnDelete) {
      retained.push(r.name);
      continue;
    }
    if (r.type === types.container) await hostOf(r).must(["rm", "-f", r.inputs.name]);
    if (r.type === types.volume) await hostOf(r).must(["volume", "rm", r.inputs.name]);
    if (r.type === types.network) await hostOf(r).must(["network", "rm", r.inputs.name]);
    deleted.push(r.name);
  }
  const restore = startRestore && (() => startRestore!().result);
  return { restore, startRestore, retained, deleted };
}

function labels(r: Declared): string[] {
  return ((r.inputs.labels ?? []) as { label: string; value: string }[]).flatMap((l) => ["--label", `${l.label}=${l.value}`]);
}

async function createContainer(host: DockerHost, r: Declared): Promise<void> {
  const i = r.inputs;
  // The engine replaces a container whose declared inputs changed (env, uploads, image…).
  const declared = crypto.createHash("sha256").update(JSON.stringify(i)).digest("hex");
  if (await host.exists("container", i.name)) {
    const current = (await host.must(["inspect", "--format", '{{index .Config.Labels "edms-test.inputs"}}', i.name])).trim();
    if (current === declared) return;
    await host.must(["rm", "-f", i.name]);
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "edms-ctr-"));
  try {
    const envFile = path.join(work, "env");
    fs.writeFileSync(envFile, `${((i.envs ?? []) as string[]).join("\n")}\n`, { mode: 0o600 });
    const [firstNetwork, ...otherNetworks] = (i.networksAdvanced ?? []) as { name: string }[];
    const args = ["create", "--name", i.name, "--env-file", envFile, ...labels(r), "--label", `edms-test.inputs=${declared}`];
    if (i.restart) args.push("--restart", i.restart);
    if (firstNetwork) args.push("--network", firstNetwork.name);
    for (const m of i.mounts as { type: string; source: string; target: string; readOnly?: boolean }[]) {
      args.push("--mount", `type=${m.type},source=${m.source},target=${m.target}${m.readOnly ? ",readonly" : ""}`);
    }
    const hc = i.healthcheck;
    if (hc) {
      const [kind, ...cmd] = hc.tests as string[];
      if (kind !== "CMD") throw new Error(`healthcheck form ${kind} is not materialised`);
      args.push("--health-cmd", cmd.map(shellQuote).join(" "));
      if (hc.interval) args.push("--health-interval", hc.interval);
      if (hc.timeout) args.push("--health-timeout", hc.timeout);
      if (hc.startPeriod) args.push("--health-start-period", hc.startPeriod);
      if (hc.startInterval) args.push("--health-start-interval", hc.startInterval);
      if (hc.retries) args.push("--health-retries", String(hc.retries));
    }
    if (i.stopTimeout) args.push("--stop-timeout", String(i.stopTimeout));
    args.push(i.image, ...(i.command ?? []));
    await host.must(args);
    for (const n of otherNetworks) await host.must(["network", "connect", n.name, i.name]);

    // Uploads: the files with their content and executable bit, copied in before start.
    const root = path.join(work, "uploads");
    for (const u of (i.uploads ?? []) as { file: string; content: string; executable?: boolean; permissions?: string }[]) {
      const target = path.join(root, u.file);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      const mode = u.permissions ? parseInt(u.permissions, 8) : u.executable ? 0o755 : 0o644;
      fs.writeFileSync(target, u.content, { mode });
      fs.chmodSync(target, mode);
    }
    if (fs.existsSync(root)) await host.must(["cp", `${root}/.`, `${i.name}:/`]);
    await host.must(["start", i.name]);
    if (i.wait) await waitHealthy(host, i.name, (i.waitTimeout ?? 60) * 1000);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** As the provider's wait: the container must turn healthy in time, or the update fails. */
async function waitHealthy(host: DockerHost, name: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let state = "";
  while (Date.now() < deadline) {
    state = (await host.must(["inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}", name])).trim();
    if (state === "healthy") return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`container ${name} is ${state}, not healthy, after ${timeoutMs / 1000} s:\n${(await host.run(["logs", "--tail", "20", name])).stderr}`);
}

/**
 * Starts a declared command.local.Command's create script as the provider does: the
 * operator's whole environment, then the declared one (pulumi-command
 * provider/pkg/provider/local/commandOutputs.go: cmd.Env = os.Environ(), then appends),
 * run by exec.CommandContext, which on cancel SIGKILLs that one process, not its children.
 */
function startCommand(r: Declared): RunningCommand {
  const [interpreter, ...flags] = (r.inputs.interpreter as string[]) ?? ["/bin/sh", "-c"];
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...(r.inputs.environment as Record<string, string>) })) {
    if (v !== undefined) env[k] = v;
  }
  const child = spawn(interpreter, [...flags, r.inputs.create], { env, stdio: ["ignore", "pipe", "pipe"] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on("data", (d) => out.push(d));
  child.stderr.on("data", (d) => err.push(d));
  let killed = false;
  const result = new Promise<RunResult>((resolve, reject) => {
    const done = (code: number | null, signal: NodeJS.Signals | null) =>
      resolve({ code: code ?? (signal ? 128 + 9 : 1), stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    child.on("error", reject);
    // Killed, its orphaned children may hold the pipes open: the command has ended anyway.
    child.on("exit", (code, signal) => killed && done(code, signal));
    child.on("close", done);
  });
  return {
    result,
    pid: child.pid!,
    kill: () => {
      killed = true;
      child.kill("SIGKILL");
    },
  };
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
