import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mustRun, run } from "../support/run";
import { makeWorld, type World } from "../support/world";

let world: World;

beforeAll(async () => {
  world = await makeWorld();
  await world.backup();
});
afterAll(async () => {
  await world?.cleanup();
});

describe("verify", () => {
  async function damagedCopy(damage: (dir: string) => void): Promise<{ code: number; stderr: string }> {
    const id = "20000101_000000";
    const source = (await world.edms(["list"])).stdout.split(/\s+/)[0];
    const dir = path.join(world.backupDir, id);
    await mustRun("cp", ["-a", path.join(world.backupDir, source), dir]);
    damage(dir);
    const result = await world.edms(["verify", id]);
    fs.rmSync(dir, { recursive: true, force: true });
    return result;
  }

  it("fails naming a file whose bytes changed", async () => {
    const result = await damagedCopy((dir) => fs.appendFileSync(path.join(dir, "storage-1", "documents", "2026", "01", "plain.pdf"), "x"));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/damaged: .*plain\.pdf/);
  });

  it("fails when a file is missing, added, or the dump does not read", async () => {
    expect((await damagedCopy((dir) => fs.rmSync(path.join(dir, "storage-2", "random.bin")))).code).not.toBe(0);
    expect((await damagedCopy((dir) => fs.writeFileSync(path.join(dir, "storage-1", "extra"), "x"))).stderr).toContain("SHA256SUMS lists");
    expect((await damagedCopy((dir) => fs.writeFileSync(path.join(dir, "db", "toc.dat"), "garbage"))).code).not.toBe(0);
    expect((await damagedCopy((dir) => fs.rmSync(path.join(dir, "storage-1", "empty", "nested-empty"), { recursive: true }))).stderr).toContain("entries");
  });

  it("fails when SHA256SUMS itself was edited, though every file is intact", async () => {
    const result = await damagedCopy((dir) => {
      const sums = fs.readFileSync(path.join(dir, "SHA256SUMS"), "utf8").split("\n");
      const i = sums.findIndex((l) => l.includes("random.bin"));
      sums[i] = `${"0".repeat(64)}${sums[i].slice(64)}`;
      fs.writeFileSync(path.join(dir, "SHA256SUMS"), sums.join("\n"));
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/damaged: .*random\.bin: FAILED/);
  });

  it("hashes and verifies the same without openssl (sha256sum only)", async () => {
    // A PATH with every tool of this machine but openssl.
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "edms-noopenssl-"));
    for (const d of (process.env.PATH ?? "").split(":")) {
      if (!fs.existsSync(d)) continue;
      for (const name of fs.readdirSync(d)) {
        if (name !== "openssl" && !fs.existsSync(path.join(bin, name))) fs.symlinkSync(path.join(d, name), path.join(bin, name));
      }
    }
    const env = { PATH: bin };
    expect((await run("bash", ["-c", "command -v openssl"], { env })).code).not.toBe(0);
    const id = (await world.edms(["backup"], { env })).stdout.trim().split("\n").pop()!;
    await mustRun("sha256sum", ["--check", "--strict", "--quiet", "SHA256SUMS"], { cwd: path.join(world.backupDir, id) });
    expect((await world.edms(["verify", id], { env })).code).toBe(0);
    expect((await world.edms(["verify", id])).code).toBe(0);
    // Damaged in a file of its own: random.bin is a hard link shared with the first backup.
    const damaged = path.join(world.backupDir, id, "storage-1", "random.bin");
    const bytes = fs.readFileSync(damaged);
    fs.rmSync(damaged);
    fs.writeFileSync(damaged, Buffer.concat([bytes, Buffer.from("x")]));
    expect((await world.edms(["verify", id], { env })).stderr).toMatch(/random\.bin: FAILED/);
    fs.rmSync(path.join(world.backupDir, id), { recursive: true });
    fs.rmSync(bin, { recursive: true });
  });

  it("checks a whole backup without sha256sum -c, also one an older version wrote with meta/sums.z", async () => {
    // sha256sum -c is the slow way, taken only when something disagrees: here it fails loudly.
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "edms-nocheck-"));
    const real = (await mustRun("bash", ["-c", "command -v sha256sum"])).trim();
    fs.writeFileSync(path.join(bin, "sha256sum"), `#!/bin/sh\nfor a; do [ "$a" = --check ] && { echo "sha256sum --check was run" >&2; exit 3; }; done\nexec ${real} "$@"\n`, { mode: 0o755 });
    const env = { PATH: `${bin}:${process.env.PATH}` };
    const source = (await world.edms(["list"])).stdout.split(/\s+/)[0];
    expect((await world.edms(["verify", source], { env })).code).toBe(0);
    // Earlier versions also kept each backup's records in meta/sums.z, listed last in SHA256SUMS.
    const old = path.join(world.backupDir, "20000102_000000");
    await mustRun("cp", ["-a", path.join(world.backupDir, source), old]);
    await mustRun("bash", ["-c", "find storage-* -type f -print0 | xargs -0 sha256sum -z >meta/sums.z && sha256sum meta/sums.z >>SHA256SUMS"], { cwd: old });
    expect((await world.edms(["verify", "20000102_000000"], { env })).code).toBe(0);
    fs.appendFileSync(path.join(old, "meta", "sums.z"), "x");
    expect((await world.edms(["verify", "20000102_000000"], { env })).stderr).toContain("sha256sum --check was run");
    fs.rmSync(old, { recursive: true });
    fs.rmSync(bin, { recursive: true });
  });

  it("refuses an id that is not a backup", async () => {
    const result = await world.edms(["verify", "20990101_000000"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("edms-backup list");
  });
});
