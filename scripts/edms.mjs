#!/usr/bin/env node
// Usage: npm run edms -- --stack STACK COMMAND [ARGS...]
//
// Runs `edms-backup COMMAND ARGS...` in the scheduler's container of stack STACK, on that
// stack's Docker host (edms-backup:dockerHost of Pulumi.STACK.yaml), through the docker CLI
// as the operator's own environment reaches it (DOCKER_*, ssh-agent): status, list, verify,
// drill, pin, restore ID --files … need no `docker exec` typed by hand and no
// `pulumi stack output … | sh`. Exits with the command's status.
//
//   npm run edms -- --stack prod status
//   npm run edms -- --stack prod restore 20260104_020000 --files /edms/storage/1/documents/2026/01/report.pdf --yes
//
// (In the container the i-th storage volume is /edms/storage/<i>.)
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

/** Where the components mount the runtime in the scheduler (components/runtimeFiles.ts). */
export const runtimeMount = "/opt/edms-backup";

/**
 * The docker CLI's arguments for running ARGS in STACK's scheduler, from the stack file in
 * ROOT; throws an Error that names the fix when the stack file does not say where.
 */
export function dockerArgs(root, stack, args, { tty = false } = {}) {
  const file = path.join(root, `Pulumi.${stack}.yaml`);
  if (!fs.existsSync(file)) {
    const stacks = fs.readdirSync(root).map((n) => /^Pulumi\.(.+)\.yaml$/.exec(n)?.[1]).filter(Boolean);
    throw new Error(`no stack file Pulumi.${stack}.yaml in ${root}: the stacks here are ${stacks.join(", ")}`);
  }
  const config = parse(fs.readFileSync(file, "utf8"))?.config ?? {};
  if (config["edms-backup:role"] === "vault") {
    throw new Error(`${stack} is a vault stack: its container is the vault's (pulumi stack output vaultStatus --stack ${stack})`);
  }
  const host = config["edms-backup:dockerHost"];
  if (typeof host !== "string" || host === "") {
    throw new Error(`Pulumi.${stack}.yaml has no edms-backup:dockerHost: set it (pulumi config set edms-backup:dockerHost ssh://deploy@vm.example.org --stack ${stack})`);
  }
  return ["--host", host, "exec", "-i", ...(tty ? ["-t"] : []), `edms-backup-${stack}`, `${runtimeMount}/edms-backup`, ...args];
}

function main(argv) {
  let stack = "";
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    if (stack === "" && argv[i] === "--stack") stack = argv[++i] ?? "";
    else if (stack === "" && argv[i].startsWith("--stack=")) stack = argv[i].slice("--stack=".length);
    else rest.push(argv[i]);
  }
  if (stack === "" || rest.length === 0) {
    console.error("usage: npm run edms -- --stack STACK COMMAND [ARGS...]   (e.g. npm run edms -- --stack prod list)");
    return 2;
  }
  const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
  let args;
  try {
    args = dockerArgs(root, stack, rest, { tty: Boolean(process.stdin.isTTY && process.stdout.isTTY) });
  } catch (error) {
    console.error(`edms: ${error.message}`);
    return 1;
  }
  const result = spawnSync("docker", args, { stdio: "inherit" });
  if (result.error) {
    console.error(`edms: cannot run the docker CLI (${result.error.code ?? result.error.message}): install it, or put it on PATH`);
    return 1;
  }
  return result.status ?? 1;
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
