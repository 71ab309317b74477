import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { changeStorageTree, snapshotTree } from "../support/fixtures";
import { dbFingerprint } from "../support/pg";
import { edmsBackup, run } from "../support/run";
import { listDir, makeWorld, type World } from "../support/world";

// A restore stopped at each of its steps (found by the runtime's step hook, not by timing):
// killed with its whole process group, killed alone, or with PostgreSQL restarted there.
// Two backups A and B of one world: each round restores the other one over the current
// state, stopped at one step, checks that the state is the old or the restored one, then
// runs the same restore again and checks that it finished.

let world: World;
const ids: Record<"A" | "B", string> = { A: "", B: "" };
const states: Record<"A" | "B", { db: Awaited<ReturnType<typeof dbFingerprint>>; storage: ReturnType<typeof snapshotTree>[] }> = {} as never;
let current: "A" | "B";
let hook: string;
let steps: string[];
const pgBin = "/usr/lib/postgresql/15/bin";

/** The database-level state the restores must keep: settings, comment, grants. */
const dbStateSql = `SELECT coalesce((SELECT string_agg(c, ',' ORDER BY c) FROM pg_db_role_setting s, unnest(s.setconfig) c WHERE s.setdatabase = d.oid), '')
  || ' | ' || coalesce(shobj_description(d.oid, 'pg_database'), '') || ' | ' || coalesce(d.datacl::text, '') || ' | ' || d.datallowconn
  FROM pg_database d WHERE datname = 'edms'`;
let dbState: string;

/** A storage folder as the application sees it: the restore's own hidden entries and the folder's mtime left out. */
function visible(dir: string): ReturnType<typeof snapshotTree> {
  const tree = snapshotTree(dir);
  for (const key of Object.keys(tree)) if (key.startsWith(".edms-restore")) delete tree[key];
  tree["."] = { ...tree["."], mtimeNs: "" };
  return tree;
}

beforeAll(async () => {
  world = await makeWorld();
  await world.cluster.psql(`CREATE ROLE reader; CREATE ROLE auditor;
    ALTER DATABASE edms SET work_mem = '7MB'; ALTER DATABASE edms SET "TimeZone" = 'Europe/Berlin';
    ALTER DATABASE edms SET search_path = 'a, b', public; ALTER ROLE reader IN DATABASE edms SET statement_timeout = '5s';
    COMMENT ON DATABASE edms IS 'the EDMS''s database'; REVOKE ALL ON DATABASE edms FROM PUBLIC;
    GRANT CONNECT, TEMP ON DATABASE edms TO reader; GRANT CONNECT ON DATABASE edms TO auditor WITH GRANT OPTION;`, "postgres");
  await world.cluster.psql("GRANT SELECT ON users_user TO reader");
  dbState = await world.cluster.psql(dbStateSql, "postgres");
  ids.A = await world.backup();
  states.A = { db: await dbFingerprint(world.env, "edms"), storage: world.storage.map(visible) };
  await world.cluster.psql("UPDATE users_user SET email = 'b@example.org'; DELETE FROM audit_audittrail WHERE id > 500; CREATE TABLE b_only (x int); INSERT INTO b_only VALUES (1);");
  changeStorageTree(world.storage[0], "b");
  fs.writeFileSync(path.join(world.storage[1], "b-only.txt"), "b\n");
  await new Promise((r) => setTimeout(r, 1100));
  ids.B = await world.backup();
  states.B = { db: await dbFingerprint(world.env, "edms"), storage: world.storage.map(visible) };
  current = "B";
  hook = path.join(world.root, "step-hook");
  fs.writeFileSync(hook, `#!/usr/bin/env bash
[[ -z "$EDMS_TEST_TRACE" ]] || printf '%s\\n' "$1" >>"$EDMS_TEST_TRACE"
[[ "$1" == "$EDMS_TEST_AT" ]] || exit 0
case "$EDMS_TEST_DO" in
  kill-group) read -r _ _ _ _ pgid _ </proc/"$2"/stat; kill -KILL -- -"$pgid" ;;
  kill-main) kill -KILL "$2" ;;
  # Without the restore's open files: a postmaster holding its lock would hold it forever.
  restart) for fd in /proc/self/fd/*; do fd=\${fd##*/}; ((fd > 2 && fd < 255)) && eval "exec \$fd>&-"; done
    runuser -u postgres -- ${pgBin}/pg_ctl -D "$EDMS_TEST_PGDATA" -m fast -w restart >/dev/null 2>&1 ;;
esac
`, { mode: 0o755 });
  // The steps of an in-place restore (B over B), in order.
  const trace = path.join(world.root, "trace");
  const traced = await world.edms(["restore", ids.B, "--yes"], { env: { EDMS_BACKUP_STEP_HOOK: hook, EDMS_TEST_TRACE: trace } });
  expect(traced.code, traced.stderr).toBe(0);
  steps = [...new Set(fs.readFileSync(trace, "utf8").trim().split("\n"))];
  const fp = await dbFingerprint(world.env, "edms");
  expect(fp.tables).toEqual(states.B.db.tables);
  expect(fp.schema).toEqual(states.B.db.schema);
});
afterAll(async () => {
  await world?.cleanup();
});

/** Restores the other backup, stopped at STEP by ACTION; checks the state; runs it again. */
async function stopAt(step: string, action: "kill-group" | "kill-main" | "restart"): Promise<void> {
  const other = current === "A" ? "B" : "A";
  const env = { ...(process.env as Record<string, string>), ...world.env, EDMS_BACKUP_STEP_HOOK: hook, EDMS_TEST_AT: step, EDMS_TEST_DO: action, EDMS_TEST_TRACE: "", EDMS_TEST_PGDATA: path.join(world.cluster.dir, "data") };
  const child = spawn(edmsBackup, ["restore", ids[other], "--yes"], { env, detached: true, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const code = await new Promise<number | null>((r) => child.on("close", (c) => r(c)));
  const where = `${action} at ${step} (restoring ${other} over ${current}): ${stderr}`;

  if (action === "restart") {
    // It finishes, or fails with its own lines naming the cause: no raw tool output.
    if (code !== 0) expect(stderr.split("\n").filter((l) => l && !l.startsWith("edms-backup ")), where).toEqual([]);
  } else {
    // Orphans of a process killed alone finish or die on their own: wait for the lock.
    await waitForLock();
  }
  // The application can connect, and the database is the old one or the restored one.
  const fingerprint = await dbFingerprint(world.env, "edms");
  expect([states[current].db, states[other].db], where).toContainEqual(fingerprint);
  expect(await world.cluster.psql(dbStateSql, "postgres"), where).toBe(dbState);
  // Each storage folder is the old or the restored one, or (stopped inside its swap) the
  // journal says the restore goes on.
  const pending = fs.existsSync(path.join(world.backupDir, ".restore-journal"));
  world.storage.forEach((dir, i) => {
    const tree = visible(dir);
    const whole = [states[current].storage[i], states[other].storage[i]].some((s) => JSON.stringify(s) === JSON.stringify(tree));
    expect(whole || (pending && /^storage\./.test(step)), where).toBe(true);
  });

  const again = await world.edms(["restore", ids[other], "--yes"]);
  expect(again.code, `${where}\nrerun: ${again.stderr}`).toBe(0);
  expect(await dbFingerprint(world.env, "edms"), where).toEqual(states[other].db);
  world.storage.forEach((dir, i) => expect(visible(dir), where).toEqual(states[other].storage[i]));
  world.storage.forEach((dir) => expect(listDir(dir).filter((n) => n.startsWith(".edms-restore")), where).toEqual([]));
  expect(await world.cluster.psql(dbStateSql, "postgres"), where).toBe(dbState);
  expect(await world.cluster.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'edms\\_restoring\\_%'", "postgres"), where).toBe("0\n");
  expect(await world.cluster.psql("SELECT has_table_privilege('reader', 'users_user', 'SELECT')"), where).toBe("t\n");
  expect(fs.existsSync(path.join(world.backupDir, ".restore-journal")), where).toBe(false);
  current = other;
}

async function waitForLock(): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const free = await run("flock", ["-n", path.join(world.backupDir, ".lock"), "true"]);
    if (free.code === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the lock of a killed restore was never released");
}

describe("a restore stopped at every step", () => {
  it("covers every step of the database staging, the swap, the storage swap and the config", () => {
    for (const step of ["staging.database-created", "staging.load-started", "staging.loaded", "staging.rows-checked", "staging.state-carried",
      "journal.staged", "database.swap", "database.swapped", "storage.1.staged", "storage.1.moved-aside", "storage.1.moved-in",
      "storage.1.old-removed", "storage.2.swapped", "restore.done"]) {
      expect(steps).toContain(step);
    }
    expect(steps.length).toBeGreaterThanOrEqual(20);
  });

  it("killed with its process group at each step: the old or the restored state, and a rerun finishes it", { timeout: 1_200_000 }, async () => {
    for (const step of steps) await stopAt(step, "kill-group");
  });

  // A round costs two restores (about 14 s), so these two stop at the steps where their
  // action differs from the kill above: while pg_restore runs (an orphan goes on, or the
  // server ends it), at the swap, and inside the storage swap.
  it("killed alone (its children go on) at the load, the swap and the storage swap: the same", { timeout: 600_000 }, async () => {
    for (const step of ["staging.load-started", "database.swap", "storage.1.moved-aside", "storage.1.old-removed"]) await stopAt(step, "kill-main");
  });

  it("with PostgreSQL restarted at the staging, the load, the row check and the swap: it finishes or fails with its own lines, and a rerun finishes it", { timeout: 600_000 }, async () => {
    for (const step of ["staging.database-created", "staging.load-started", "staging.rows-checked", "database.swap"]) await stopAt(step, "restart");
  });
});
