import * as fs from "node:fs";
import * as path from "node:path";
import { vi } from "vitest";
import { parse } from "yaml";
import { repoRoot } from "./run";

/** A resource the program declared, with its inputs as the engine receives them. */
export interface Declared {
  type: string;
  name: string;
  urn: string;
  id: string;
  inputs: Record<string, any>;
  /** Top-level inputs that reached the engine as secrets. */
  secretInputs: string[];
  /** The provider reference ("urn::id") of a custom resource. */
  provider?: string;
  options: { protect: boolean; retainOnDelete: boolean; deleteBeforeReplace: boolean; dependencies: string[]; additionalSecretOutputs: string[] };
}

export interface ProgramRun {
  resources: Declared[];
  outputs: Record<string, unknown>;
  error?: Error;
  /** The program's module (its exports), and the pulumi SDK instance it ran with. */
  module?: Record<string, unknown>;
  pulumi: typeof import("@pulumi/pulumi");
}

/** A stack file's config, as Pulumi hands it to the program: objects and lists as JSON. */
export function stackConfig(stack: string): Record<string, string> {
  const file = parse(fs.readFileSync(path.join(repoRoot, `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> };
  return encodeConfig(file.config);
}

export function encodeConfig(config: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
}

/**
 * Runs index.ts under Pulumi mocks with this config (a fresh module graph each time) and
 * returns what it declared. Resource options that mocks do not see (protect,
 * retainOnDelete) are read off the registration requests.
 */
export async function runProgram(config: Record<string, string>, options: { stack: string; secretKeys?: string[]; askDaemons?: boolean }): Promise<ProgramRun> {
  vi.resetModules();
  const pulumi = await import("@pulumi/pulumi");
  const mocksModule = (await import("@pulumi/pulumi/runtime/mocks")) as any;
  const requests = new Map<string, { protect: boolean; retainOnDelete: boolean; deleteBeforeReplace: boolean; dependencies: string[]; additionalSecretOutputs: string[] }>();
  const proto = mocksModule.MockMonitor.prototype;
  if (!proto.__edmsWrapped) {
    const original = proto.registerResource;
    proto.registerResource = function (req: any, callback: any) {
      proto.__edmsRequests?.set(`${req.getType()}::${req.getName()}`, {
        protect: req.getProtect(),
        retainOnDelete: req.getRetainondelete(),
        deleteBeforeReplace: req.getDeletebeforereplace(),
        dependencies: req.getDependenciesList(),
        additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
      });
      return original.call(this, req, callback);
    };
    proto.__edmsWrapped = true;
  }
  proto.__edmsRequests = requests;

  const resources: Declared[] = [];
  const project = "edms-backup";
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const id = `${args.name}-id`;
        const secretInputs = Object.keys(args.inputs).filter((k) => isSecretValue(args.inputs[k]));
        const inputs = unwrapSecrets(args.inputs);
        const state: Record<string, unknown> = { ...inputs };
        if (args.type === "docker:index/remoteImage:RemoteImage") state.imageId = inputs.name;
        const parentless = `urn:pulumi:${options.stack}::${project}::${args.type}::${args.name}`;
        resources.push({ type: args.type, name: args.name, urn: parentless, id, inputs, secretInputs, provider: args.provider, options: undefined as any });
        return { id, state };
      },
      call: () => ({}),
    },
    project,
    options.stack,
    false,
  );
  pulumi.runtime.setAllConfig(config, options.secretKeys ?? []);

  let module: Record<string, unknown> | undefined;
  let error: Error | undefined;
  // The program asks the target daemon what runs there (components/edmsBackup.ts); the
  // unit tests' hosts are not this machine's, so only the Docker suites let it ask.
  const noDaemonCheck = process.env.EDMS_BACKUP_NO_DAEMON_CHECK;
  if (!options.askDaemons) process.env.EDMS_BACKUP_NO_DAEMON_CHECK = "1";
  try {
    module = await import(path.join(repoRoot, "index.ts"));
  } catch (e) {
    error = e as Error;
  } finally {
    if (noDaemonCheck === undefined) delete process.env.EDMS_BACKUP_NO_DAEMON_CHECK;
    else process.env.EDMS_BACKUP_NO_DAEMON_CHECK = noDaemonCheck;
  }
  // index.ts sets module.exports (export =): the outputs are that object's properties, as
  // Pulumi's nodejs host reads them; vitest's interop also shows it as `default`.
  const exported = (module && typeof module.default === "object" ? module.default : module) as Record<string, unknown> | undefined;
  const outputs: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(exported ?? {})) {
    outputs[key] = pulumi.Output.isInstance(value) ? await new Promise((resolve) => (value as any).apply(resolve)) : value;
  }
  // Registrations finish asynchronously: wait until no new resource arrives.
  let seen = -1;
  while (seen !== resources.length) {
    seen = resources.length;
    await new Promise((r) => setTimeout(r, 50));
  }
  for (const r of resources) {
    r.options = requests.get(`${r.type}::${r.name}`) ?? { protect: false, retainOnDelete: false, deleteBeforeReplace: false, dependencies: [], additionalSecretOutputs: [] };
  }
  return { resources, outputs, error, module, pulumi };
}

export const types = {
  provider: "pulumi:providers:docker",
  volume: "docker:index/volume:Volume",
  image: "docker:index/remoteImage:RemoteImage",
  container: "docker:index/container:Container",
  network: "docker:index/network:Network",
  command: "command:local:Command",
};

/** The one resource of TYPE whose name holds PART (the scheduler's container among the demo's). */
export function named(run: ProgramRun, type: string, part: string): Declared {
  const found = run.resources.filter((r) => r.type === type && r.name.includes(part));
  if (found.length !== 1) throw new Error(`expected one ${type} named *${part}*, found ${found.length}: ${found.map((r) => r.name).join(", ")}`);
  return found[0];
}

export function only(run: ProgramRun, type: string): Declared {
  const found = run.resources.filter((r) => r.type === type);
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}: ${found.map((r) => r.name).join(", ")}`);
  return found[0];
}

/** The env list of a container as a map. */
/** A container's runtime settings: its env, and the settings file uploaded into it. */
export function envOf(container: Declared): Record<string, string> {
  const env = Object.fromEntries((container.inputs.envs as string[]).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
  const file = ((container.inputs.uploads ?? []) as { file: string; content: string }[]).find((u) => u.file === env.EDMS_BACKUP_ENV_FILE);
  return { ...env, ...(file ? parseEnvFile(file.content) : {}) };
}

/** The runtime's settings file (runtime/lib/envfile.sh): NAME=VALUE lines, \n and \\ escaped. */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n").filter((l) => l !== "")) {
    const at = line.indexOf("=");
    env[line.slice(0, at)] = line.slice(at + 1).replace(/\\(\\|n)/g, (_, c: string) => (c === "n" ? "\n" : "\\"));
  }
  return env;
}

// How the engine's wire format marks a secret value.
const secretSig = "4dabf18193072939515e22adb298388d";
const secretMark = "1b47061264138c4ac30d75fd1eb44270";

function isSecretValue(value: unknown): boolean {
  return typeof value === "object" && value !== null && (value as Record<string, unknown>)[secretSig] === secretMark;
}

function unwrapSecrets(value: any): any {
  if (isSecretValue(value)) return unwrapSecrets(value.value);
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v)]));
  return value;
}

/**
 * What `pulumi destroy` does to each declared resource, in the engine's order: a protected
 * resource refuses before anything else is looked at (pulumi/pulumi
 * pkg/resource/deploy/step.go, DeleteStep.Apply: "unable to delete resource … as it is
 * currently marked for protection"), then retainOnDelete leaves it on the host, the rest is
 * deleted. The destroy fails when any resource refuses.
 */
export function destroyOutcome(run: ProgramRun): { failed: boolean; refused: string[]; retained: string[]; deleted: string[] } {
  const custom = run.resources.filter((r) => r.type.startsWith("docker:") || r.type.startsWith("command:"));
  const refused = custom.filter((r) => r.options.protect).map((r) => r.name);
  const retained = custom.filter((r) => !r.options.protect && r.options.retainOnDelete).map((r) => r.name);
  const deleted = custom.filter((r) => !r.options.protect && !r.options.retainOnDelete).map((r) => r.name);
  return { failed: refused.length > 0, refused, retained, deleted };
}
