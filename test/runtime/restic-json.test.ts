import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot, run, runtimeDir } from "../support/run";

// restic's JSON is read by key with jq (issue 32, finding 5): the shapes of restic 0.14
// (Debian bookworm's), 0.16 and 0.17 (a trixie-based image's), from restic's sources
// (test/fixtures/restic/README.md), give the same answers.

const fixtures = path.join(repoRoot, "test/fixtures/restic");

/** Runs a function of runtime/lib/offsite.sh with FILE on its standard input. */
async function offsiteFn(fn: string, file: string) {
  return run("bash", ["-c", `set -euo pipefail; source "$1/lib/common.sh"; source "$1/lib/offsite.sh"; ${fn} <"$2"`, "_", runtimeDir, path.join(fixtures, file)]);
}

describe("restic's JSON, read by key", () => {
  const index = [
    "20261130_020000 3f1c0a8e9b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e 52428800",
    "20261201_020000 9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f1a2b 53477376",
  ];

  it.each(["0.14", "0.16", "0.17"])("snapshots --json of restic %s: every backup, its snapshot and size", async (version) => {
    const result = await offsiteFn("snapshots_index", `snapshots-${version}.json`);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim().split("\n")).toEqual(index);
  });

  it("a snapshot without an id= tag (not a backup's) is passed over, one without bytes= counts 0", async () => {
    const shapes = JSON.parse(fs.readFileSync(path.join(fixtures, "snapshots-0.17.json"), "utf8"));
    shapes[0].tags = ["edms-backup", "stack=prod"];
    shapes[1].tags = ["id=20261201_020000", "edms-backup"];
    const result = await run("bash", ["-c", `source "$1/lib/common.sh"; source "$1/lib/offsite.sh"; snapshots_index`, "_", runtimeDir], { input: JSON.stringify(shapes) });
    expect(result.stdout.trim()).toBe(`20261201_020000 ${shapes[1].id} 0`);
  });

  // 0.14 names the snapshot by its short id there (snapshotID.Str()), 0.17 in full.
  it.each([
    ["0.14", "3f1c0a8e"],
    ["0.17", "3f1c0a8e9b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e"],
  ])("backup --json of restic %s: the snapshot and the bytes added, from the summary", async (version, snapshot) => {
    const result = await offsiteFn("backup_summary", `backup-${version}.jsonl`);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe(`${snapshot} 1048576`);
  });

  it("the restic on this machine writes what the fixtures say (the installed version's real output)", async () => {
    const repo = fs.mkdtempSync(path.join(fs.realpathSync("/tmp"), "edms-restic-json-"));
    const src = fs.mkdtempSync(path.join(fs.realpathSync("/tmp"), "edms-restic-src-"));
    try {
      fs.writeFileSync(path.join(src, "f"), "x".repeat(1000));
      const env = { RESTIC_REPOSITORY: path.join(repo, "r"), RESTIC_PASSWORD: "pw", RESTIC_CACHE_DIR: path.join(repo, "cache") };
      expect((await run("restic", ["init", "-q"], { env })).code).toBe(0);
      const backup = await run("restic", ["backup", "--json", "--quiet", "--tag", "id=20261130_020000", "--tag", "bytes=1000", src], { env });
      const summary = await run("bash", ["-c", `source "$1/lib/common.sh"; source "$1/lib/offsite.sh"; backup_summary`, "_", runtimeDir], { input: backup.stdout });
      const [snap, added] = summary.stdout.trim().split(" ");
      expect(snap).toMatch(/^[0-9a-f]{8}([0-9a-f]{56})?$/);
      expect(Number(added)).toBeGreaterThan(0);
      const list = await run("restic", ["snapshots", "--json"], { env });
      const index = await run("bash", ["-c", `source "$1/lib/common.sh"; source "$1/lib/offsite.sh"; snapshots_index`, "_", runtimeDir], { input: list.stdout });
      expect(index.stdout.trim()).toMatch(new RegExp(`^20261130_020000 ${snap}[0-9a-f]* 1000$`));
    } finally {
      fs.rmSync(repo, { recursive: true, force: true });
      fs.rmSync(src, { recursive: true, force: true });
    }
  });
});
