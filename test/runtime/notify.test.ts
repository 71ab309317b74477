import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../support/pg";
import { startReceiver } from "../support/receiver";
import { lastLine, mustRun } from "../support/run";
import { makeWorld, type World } from "../support/world";

// Pings (a dead man's switch: /start, success, /fail) and webhook events, sent with curl to
// a real HTTP receiver on loopback; a receiver that is down or slow never fails a backup.
let world: World;
const secretValue = "notify-secret-value-91c2";
const token = "tok-5e1f0a";

beforeAll(async () => {
  world = await makeWorld();
});
afterAll(async () => {
  await world?.cleanup();
});

function events(received: { path: string; body: string }[], at: string) {
  return received.filter((r) => r.path === at).map((r) => JSON.parse(r.body));
}

describe("notifications", () => {
  it("a good backup: /start then the success ping, and backup.succeeded with its id and sizes; no secret anywhere", async () => {
    const receiver = await startReceiver();
    try {
      const result = await world.edms(["backup"], {
        env: { EDMS_BACKUP_PING_URL: `${receiver.url}/ping/${token}`, EDMS_BACKUP_WEBHOOK_URL: `${receiver.url}/hook/${token}`, EDMS_SECRET_SECRET_KEY: secretValue, EDMS_BACKUP_STACK: "notify" },
      });
      expect(result.code).toBe(0);
      const id = lastLine(result.stdout);
      const received = await receiver.until(3);
      expect(received.map((r) => r.path).sort()).toEqual([`/hook/${token}`, `/ping/${token}`, `/ping/${token}/start`].sort());
      expect(received.find((r) => r.path === `/ping/${token}`)?.body).toBe(`backup ${id} complete`);
      const [event] = events(received, `/hook/${token}`);
      expect(event).toMatchObject({ schema: "edms-backup.event/1", event: "backup.succeeded", stack: "notify", id, kind: "manual" });
      expect(event.database_bytes).toBeGreaterThan(0);
      expect(event.storage_new_bytes).toBeGreaterThan(0);
      expect(received.find((r) => r.path.startsWith("/hook"))?.contentType).toBe("application/json");
      const everything = JSON.stringify(received) + result.stderr + result.stdout;
      for (const secret of [secretValue, world.cluster.env.PGPASSWORD]) expect(everything).not.toContain(secret);
      expect(result.stderr).not.toContain(token);
    } finally {
      await receiver.close();
    }
  });

  it("a failed backup: /start then /fail with the error line, and backup.failed", async () => {
    const receiver = await startReceiver();
    try {
      const result = await world.edms(["backup"], {
        env: { EDMS_BACKUP_PING_URL: `${receiver.url}/ping`, EDMS_BACKUP_WEBHOOK_URL: `${receiver.url}/hook`, PGPASSWORD: "not-the-pw-77ab" },
      });
      expect(result.code).not.toBe(0);
      const error = result.stderr.trim().split("\n").pop()!.replace(/^edms-backup backup: /, "");
      const received = await receiver.until(3);
      expect(received.map((r) => r.path).sort()).toEqual(["/hook", "/ping/fail", "/ping/start"]);
      // The error line first, then a short tail of what the backup said before it.
      expect(received.find((r) => r.path === "/ping/fail")?.body.split("\n")[0]).toBe(error);
      expect(events(received, "/hook")[0]).toMatchObject({ event: "backup.failed", error, kind: "manual" });
      expect(JSON.stringify(received)).not.toContain("not-the-pw-77ab");
    } finally {
      await receiver.close();
    }
  });

  it("an off-site copy that failed: backup.succeeded and offsite.failed, and the ping says fail", async () => {
    const receiver = await startReceiver();
    try {
      const dir = fs.mkdtempSync(path.join(world.root, "offsite-down-"));
      const result = await world.edms(["backup"], {
        env: { EDMS_BACKUP_DIR: dir, RESTIC_REPOSITORY: "s3:https://127.0.0.1:1/edms", RESTIC_PASSWORD: "not used", EDMS_BACKUP_PING_URL: `${receiver.url}/ping`, EDMS_BACKUP_WEBHOOK_URL: `${receiver.url}/hook` },
      });
      expect(result.code).toBe(1);
      const id = lastLine(result.stdout);
      const received = await receiver.until(4);
      expect(received.map((r) => r.path).sort()).toEqual(["/hook", "/hook", "/ping/fail", "/ping/start"]);
      const body = received.find((r) => r.path === "/ping/fail")!.body;
      expect(body).toMatch(/^off-site copy failed: the off-site repository .* is unreachable/);
      expect(body).toMatch(new RegExp(`\n\n[^]*\nbackup ${id} complete in \\d+s`));
      expect(events(received, "/hook").map((e) => [e.event, e.id])).toEqual(expect.arrayContaining([["backup.succeeded", id], ["offsite.failed", id]]));
    } finally {
      await receiver.close();
    }
  });

  it("a receiver that is down: the backup succeeds, and the undelivered notification is recorded without its URL", async () => {
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(world.root, "down-"));
    const result = await world.edms(["backup"], { env: { EDMS_BACKUP_DIR: dir, EDMS_BACKUP_PING_URL: `http://127.0.0.1:${port}/${token}` } });
    expect(result.code).toBe(0);
    expect(lastLine(result.stdout)).toMatch(/^\d{8}_\d{6}$/);
    const log = path.join(dir, ".notify.log");
    const end = Date.now() + 60_000;
    while (!(fs.existsSync(log) && fs.readFileSync(log, "utf8").split("\n").length > 2) && Date.now() < end) await new Promise((r) => setTimeout(r, 500));
    const text = fs.readFileSync(log, "utf8");
    expect(text).toMatch(/ping \/start not delivered: .*(Connection refused|Failed to connect)/);
    expect(text).toMatch(/^\S+ ping not delivered: /m);
    expect(text).not.toContain(token);
  });

  it("a slow receiver: the backup ends before the receiver answers, and its next backup is not held by the lock", async () => {
    const receiver = await startReceiver({ delayMs: 8000 });
    try {
      const dir = fs.mkdtempSync(path.join(world.root, "slow-"));
      const env = { EDMS_BACKUP_DIR: dir, EDMS_BACKUP_PING_URL: `${receiver.url}/slow` };
      const first = await world.edms(["backup"], { env });
      const ended = Date.now();
      expect(first.code).toBe(0);
      // Both pings arrived, and neither was answered before the backup had ended.
      const received = await receiver.until(2);
      expect(received.map((r) => r.path)).toEqual(["/slow/start", "/slow"]);
      expect(received.filter((r) => r.answeredAt !== undefined && r.answeredAt <= ended)).toEqual([]);
      const second = await world.edms(["backup"], { env });
      expect(second.stderr).not.toMatch(/lock/);
      expect(second.code).toBe(0);
    } finally {
      await receiver.close();
    }
  });

  // Issue 32, finding 4: a receiver that hangs keeps curl running for half a minute, and
  // every user's ps would have shown its URL with the token.
  it("a hanging receiver: no process's command line shows a URL, token or password while curl waits", async () => {
    const receiver = await startReceiver({ delayMs: 20_000 });
    try {
      const dir = fs.mkdtempSync(path.join(world.root, "hang-"));
      const port = new URL(receiver.url).port;
      const env = {
        EDMS_BACKUP_DIR: dir,
        EDMS_BACKUP_PING_URL: `${receiver.url}/ping/${token}`,
        EDMS_BACKUP_WEBHOOK_URL: `http://hookuser:pa%40ss-${token}@127.0.0.1:${port}/hook?token=${token}`,
      };
      const result = await world.edms(["backup"], { env });
      expect(result.code, result.stderr).toBe(0);
      const received = await receiver.until(3);
      expect(received.map((r) => r.path).sort()).toEqual([`/hook?token=${token}`, `/ping/${token}`, `/ping/${token}/start`].sort());
      const ps = await mustRun("ps", ["-eo", "args"]);
      const curls = ps.split("\n").filter((l) => /^curl .*--data-binary/.test(l));
      expect(curls.length, ps).toBeGreaterThan(0); // they are still waiting for the answers
      for (const line of curls) expect(line).toContain("--config /dev/fd/3");
      expect(ps).not.toContain(token);
      expect(ps).not.toContain("hookuser");
      expect(ps).not.toContain(`127.0.0.1:${port}`);
    } finally {
      await receiver.close();
    }
  });

  it("prune says what it deleted", async () => {
    const receiver = await startReceiver();
    try {
      const dir = fs.mkdtempSync(path.join(world.root, "prune-"));
      const env = { EDMS_BACKUP_DIR: dir };
      const ids = [lastLine((await world.edms(["backup"], { env })).stdout)];
      await new Promise((r) => setTimeout(r, 1100));
      ids.push(lastLine((await world.edms(["backup"], { env })).stdout));
      const result = await world.edms(["prune"], { env: { ...env, EDMS_BACKUP_KEEP_LAST: "1", EDMS_BACKUP_RETENTION_DAYS: "0", EDMS_BACKUP_WEBHOOK_URL: `${receiver.url}/hook` } });
      expect(result.code).toBe(0);
      const [event] = events(await receiver.until(1), "/hook");
      expect(event).toMatchObject({ event: "prune.deleted", ids: [ids[0]], kept: 1 });
    } finally {
      await receiver.close();
    }
  });
});
