import * as crypto from "node:crypto";
import { mustRun, run, type RunResult } from "./run";

export const testImage = process.env.EDMS_TEST_IMAGE ?? "edms-test/postgres:15-r6";

/** A Docker daemon: the machine's own, or a second one standing for another VM. */
export class DockerHost {
  constructor(readonly host: string = process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock") {}

  get env(): Record<string, string> {
    return { DOCKER_HOST: this.host };
  }

  run(args: string[], input?: string | Buffer): Promise<RunResult> {
    return run("docker", args, { env: this.env, input });
  }

  must(args: string[], input?: string | Buffer): Promise<string> {
    return mustRun("docker", args, { env: this.env, input });
  }

  /** Runs a shell pipeline with this daemon as DOCKER_HOST. */
  sh(script: string, ...args: string[]): Promise<string> {
    return mustRun("bash", ["-c", `set -euo pipefail; ${script}`, "_", ...args], { env: this.env });
  }

  async exists(kind: "container" | "volume" | "network" | "image", name: string): Promise<boolean> {
    return (await this.run([kind, "inspect", name])).code === 0;
  }

  async startPostgres(name: string, network: string, password: string, volume?: string): Promise<void> {
    await this.must([
      "run", "-d", "--name", name, "--network", network, "--network-alias", name,
      "-e", "POSTGRES_USER=edms", "-e", `POSTGRES_PASSWORD=${password}`, "-e", "POSTGRES_DB=edms",
      ...(volume ? ["-v", `${volume}:/var/lib/postgresql/data`] : []),
      testImage,
    ]);
    await this.waitForPostgres(name);
  }

  async waitForPostgres(name: string): Promise<void> {
    for (let i = 0; i < 120; i++) {
      // Over TCP first: the entrypoint's setup server (as the official image's) listens on
      // its socket only, and answers there until it shuts down for the real one to start.
      const listening = await this.run(["exec", name, "pg_isready", "-q", "-h", "127.0.0.1", "-U", "edms", "-d", "edms"]);
      const ready = listening.code === 0 ? await this.run(["exec", name, "psql", "-U", "edms", "-d", "edms", "-Atc", "SELECT 1"]) : listening;
      if (ready.code === 0 && ready.stdout.trim() === "1") return;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`PostgreSQL in ${name} did not come up:\n${(await this.run(["logs", name])).stderr}`);
  }

  psql(container: string, sql: string, db = "edms"): Promise<string> {
    return this.must(["exec", "-i", container, "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", "edms", "-d", db], sql);
  }

  /** Fills a volume from a local folder, keeping owners, modes, times and links. */
  async fillVolume(volume: string, from: string): Promise<void> {
    await this.sh(
      `tar -C "$1" --format=posix --numeric-owner -cf - . | docker run --rm -i -v "$2:/v" "$3" tar -C /v --numeric-owner -xpf -`,
      from, volume, testImage,
    );
  }

  /** Copies a folder out of a volume into a local folder, keeping everything. */
  async readVolume(volume: string, sub: string, into: string): Promise<void> {
    await this.sh(
      `docker run --rm -v "$1:/v:ro" "$3" tar -C "/v/$2" --format=posix --numeric-owner -cf - . | tar -C "$4" --numeric-owner -xpf -`,
      volume, sub, testImage, into,
    );
  }

  async removeAll(names: { containers?: string[]; volumes?: string[]; networks?: string[] }): Promise<void> {
    for (const c of names.containers ?? []) await this.run(["rm", "-f", "-v", c]);
    for (const v of names.volumes ?? []) await this.run(["volume", "rm", "-f", v]);
    for (const n of names.networks ?? []) await this.run(["network", "rm", n]);
  }
}

/** A short random suffix so that test resources never collide with anything else. */
export function uniq(prefix: string): string {
  return `${prefix}-${crypto.randomBytes(3).toString("hex")}`;
}
