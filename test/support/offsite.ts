import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { freePort } from "./pg";
import { repoRoot, run } from "./run";

/** An off-site store the tests start: its folder, what restic needs to reach it, and stop. */
export interface Store {
  dir: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}

function parseEnv(out: string): Record<string, string> {
  return Object.fromEntries(out.trim().split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
}

/** OpenStack Swift with s3api over TLS (test/bed/swift.sh): S3_ENDPOINT, AWS_*, RESTIC_CACERT. */
export async function startSwift(): Promise<Store> {
  // The proxy's port and the next four (the servers and memcached), below the ephemeral
  // range (32768 and up), where the clusters' and clients' ports are; swift.sh refuses
  // ports that are taken, and a backend that did not come up: then other ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startStore("swift", 20000 + ((await freePort()) % 12000));
    } catch (error) {
      if (attempt >= 5) throw error;
    }
  }
}

/** OpenSSH's sftp on loopback (test/bed/sshd.sh): SFTP_BASE, EDMS_BACKUP_OFFSITE_SSH_KEY and _KNOWN_HOSTS. */
export async function startSshd(): Promise<Store> {
  return startStore("sshd", await freePort());
}

/** test/bed/NAME.sh started in a folder of its own on PORT; stop() ends it and removes the folder. */
async function startStore(name: string, port: number): Promise<Store> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `edms-${name}-`));
  const script = path.join(repoRoot, `test/bed/${name}.sh`);
  const started = await run(script, ["start", dir, String(port)]);
  if (started.code !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`${name}.sh start failed (exit ${started.code}): ${started.stderr}`);
  }
  const env = parseEnv(started.stdout);
  return {
    dir,
    env,
    stop: async () => {
      await run(script, ["stop", dir]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
