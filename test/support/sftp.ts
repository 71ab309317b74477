import * as fs from "node:fs";
import * as path from "node:path";
import { DockerHost, testImage } from "./docker";
import { mustRun } from "./run";

/** An sftp store in a container, as a stack's config names it, and the client key's file. */
export interface SftpStore {
  /** edms-backup:offsite, offsitePassword and offsiteSshKey for a stack that pushes there. */
  config: Record<string, unknown>;
  repository: string;
  knownHosts: string;
  clientKey: string;
  gateway: string;
  port: string;
}

/**
 * Debian's OpenSSH server in a container on `host`, published on its default bridge's
 * address: containers of this daemon and of a second daemon on this machine reach it there.
 * Its host key is pinned (knownHosts), one client key (clientKey) is allowed, as root.
 */
export async function startSftpStore(host: DockerHost, name: string, dir: string, password: string, repo = "edms"): Promise<SftpStore> {
  fs.mkdirSync(path.join(dir, "etc"), { recursive: true });
  await mustRun("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "etc", "host_ed25519")]);
  await mustRun("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "client")]);
  fs.copyFileSync(path.join(dir, "client.pub"), path.join(dir, "etc", "authorized_keys"));
  fs.writeFileSync(
    path.join(dir, "etc", "sshd_config"),
    ["Port 22", "HostKey /etc/edms-sftp/host_ed25519", "AuthorizedKeysFile /etc/edms-sftp/authorized_keys", "PermitRootLogin prohibit-password",
      "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "Subsystem sftp internal-sftp", ""].join("\n"),
  );
  const gateway = await bridgeGateway(host);
  await host.must(["create", "--name", name, "-p", `${gateway}::22`, "--entrypoint", "bash", testImage, "-c",
    "mkdir -p /run/sshd /srv/repos && exec /usr/sbin/sshd -D -e -f /etc/edms-sftp/sshd_config"]);
  await host.must(["cp", path.join(dir, "etc"), `${name}:/etc/edms-sftp`]);
  await host.must(["start", name]);
  const port = (await host.must(["port", name, "22"])).trim().split("\n")[0].split(":").pop()!;
  const hostKey = fs.readFileSync(path.join(dir, "etc", "host_ed25519.pub"), "utf8").split(" ").slice(0, 2).join(" ");
  const repository = `sftp://root@${gateway}:${port}//srv/repos/${repo}`;
  const knownHosts = `[${gateway}]:${port} ${hostKey}`;
  const clientKey = fs.readFileSync(path.join(dir, "client"), "utf8");
  return {
    config: {
      "edms-backup:offsite": { repository, knownHosts },
      "edms-backup:offsitePassword": password,
      "edms-backup:offsiteSshKey": clientKey,
    },
    repository,
    knownHosts,
    clientKey,
    gateway,
    port,
  };
}

/**
 * The address of the daemon's default bridge on this host. A daemon that created docker0
 * on its first boot leaves .Gateway out of the bridge's IPAM config (moby/moby#26799): the
 * address is then the subnet's first.
 */
async function bridgeGateway(host: DockerHost): Promise<string> {
  const [ipam] = JSON.parse(await host.must(["network", "inspect", "bridge", "--format", "{{json .IPAM.Config}}"])) as { Subnet: string; Gateway?: string }[];
  if (ipam.Gateway) return ipam.Gateway;
  const octets = ipam.Subnet.split("/")[0].split(".").map(Number);
  octets[3] += 1;
  return octets.join(".");
}
