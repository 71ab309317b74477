import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DockerHost } from "./docker";
import { types, type Declared, type ProgramRun } from "./program";
import { run, type RunResult } from "./run";

/**
 * Creates on real Docker daemons what the program declared under mocks: the same image,
 * env, mounts, uploads, network, labels, healthcheck and command, through the docker CLI
 * of the host each resource's provider names. A declared restore command is returned as
 * a function that runs its script with its environment. Existing volumes and containers
 * are left as they are (a second `pulumi up` does not recreate them either).
 */
export async function materialise(program: ProgramRun, previous?: ProgramRun): Promise<{ restore?: () => Promise<RunResult>; retained: string[]; deleted: string[] }> {
  const hosts = new Map<string, DockerHost>();
  for (const provider of [...(previous?.resources ?? []), ...program.resources].filter((r) => r.type === types.provider)) {
    hosts.set(provider.id, new DockerHost(provider.inputs.host));
  }
  const hostOf = (r: Declared): DockerHost => {
    const host = [...hosts.entries()].find(([id]) => r.provider?.endsWith(`::${id}`))?.[1];
    if (!host) throw new Error(`${r.name}: no docker provider declared for it`);
    return host;
  };

  let restore: (() => Promise<RunResult>) | undefined;
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
        if (!(await host.exists("image", r.inputs.name))) {
          await host.must(["pull", r.inputs.name]);
        }
        break;
      }
      case types.container:
        await createContainer(hostOf(r), r);
        break;
      case types.command:
        restore = () => runCommand(r);
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
    deleted.push(r.name);
  }
  return { restore, retained, deleted };
}

function labels(r: Declared): string[] {
  return ((r.inputs.labels ?? []) as { label: string; value: string }[]).flatMap((l) => ["--label", `${l.label}=${l.value}`]);
}

async function createContainer(host: DockerHost, r: Declared): Promise<void> {
  const i = r.inputs;
  if (await host.exists("container", i.name)) return;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "edms-ctr-"));
  try {
    const envFile = path.join(work, "env");
    fs.writeFileSync(envFile, `${(i.envs as string[]).join("\n")}\n`, { mode: 0o600 });
    const [firstNetwork, ...otherNetworks] = (i.networksAdvanced ?? []) as { name: string }[];
    const args = ["create", "--name", i.name, "--env-file", envFile, ...labels(r)];
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
      if (hc.retries) args.push("--health-retries", String(hc.retries));
    }
    if (i.stopTimeout) args.push("--stop-timeout", String(i.stopTimeout));
    args.push(i.image, ...(i.command ?? []));
    await host.must(args);
    for (const n of otherNetworks) await host.must(["network", "connect", n.name, i.name]);

    // Uploads: the files with their content and executable bit, copied in before start.
    const root = path.join(work, "uploads");
    for (const u of (i.uploads ?? []) as { file: string; content: string; executable?: boolean }[]) {
      const target = path.join(root, u.file);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, u.content, { mode: u.executable ? 0o755 : 0o644 });
    }
    if (fs.existsSync(root)) await host.must(["cp", `${root}/.`, `${i.name}:/`]);
    await host.must(["start", i.name]);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Runs a declared command.local.Command's create script as the provider would. */
async function runCommand(r: Declared): Promise<RunResult> {
  const [interpreter, ...flags] = (r.inputs.interpreter as string[]) ?? ["/bin/sh", "-c"];
  return run(interpreter, [...flags, r.inputs.create], {
    // As pulumi-command runs it: the operator's whole environment, then the declared one
    // (provider/pkg/provider/local/commandOutputs.go: cmd.Env = os.Environ(), then appends).
    env: { ...(process.env as Record<string, string>), ...(r.inputs.environment as Record<string, string>) },
  });
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
