import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { run, runtimeDir } from "../support/run";

/** Calls a function of runtime/lib/cron.sh after cron_parse, in a time zone. */
async function cron(expr: string, fn: string, arg: string, tz = "UTC") {
  return run("bash", ["-c", `set -euo pipefail; source "$1/lib/cron.sh"; cron_parse "$2" || { echo "$cron_error" >&2; exit 3; }; ${fn} "$3"`, "_", runtimeDir, expr, arg], {
    env: { TZ: tz },
  });
}

const at = (iso: string) => String(Date.parse(iso) / 1000);
const iso = (epoch: string) => new Date(Number(epoch.trim()) * 1000).toISOString();

describe("cron in the runtime", () => {
  it.each([
    ["0 2 * * *", "2026-03-04T02:00:00Z", true],
    ["0 2 * * *", "2026-03-04T02:01:00Z", false],
    ["*/15 * * * *", "2026-03-04T10:45:00Z", true],
    ["*/15 * * * *", "2026-03-04T10:44:00Z", false],
    ["0 1-5/2 * * *", "2026-03-04T03:00:00Z", true],
    ["0 1-5/2 * * *", "2026-03-04T04:00:00Z", false],
    ["30 6 * * 1,3,5", "2026-03-04T06:30:00Z", true], // a Wednesday
    ["30 6 * * mon-fri", "2026-03-07T06:30:00Z", false], // a Saturday
    ["0 0 * * 7", "2026-03-08T00:00:00Z", true], // 7 is Sunday too
    ["0 0 1 jan,jul *", "2026-07-01T00:00:00Z", true],
    ["0 0 13 * 5", "2026-03-06T00:00:00Z", true], // both day fields restricted: either matches
    ["0 0 13 * 5", "2026-03-13T00:00:00Z", true],
    ["0 0 13 * 5", "2026-03-12T00:00:00Z", false],
  ])("%s at %s matches: %s", async (expr, when, expected) => {
    const result = await cron(expr, "cron_matches", at(when));
    expect(result.code).toBe(expected ? 0 : 1);
  });

  it("evaluates the schedule in TZ", async () => {
    expect((await cron("0 2 * * *", "cron_matches", at("2026-07-01T00:00:00Z"), "Europe/Berlin")).code).toBe(0);
    expect((await cron("0 2 * * *", "cron_matches", at("2026-07-01T02:00:00Z"), "Europe/Berlin")).code).toBe(1);
  });

  it("finds the next and previous runs", async () => {
    expect(iso((await cron("0 2 * * *", "cron_next", at("2026-03-04T02:00:00Z"))).stdout)).toBe("2026-03-05T02:00:00.000Z");
    expect(iso((await cron("0 2 * * *", "cron_previous", at("2026-03-04T01:59:00Z"))).stdout)).toBe("2026-03-03T02:00:00.000Z");
    expect(iso((await cron("0 0 29 2 *", "cron_next", at("2026-03-01T00:00:00Z"))).stdout)).toBe("2028-02-29T00:00:00.000Z");
    expect(iso((await cron("*/20 9-17 * * mon-fri", "cron_previous", at("2026-03-09T08:00:00Z"))).stdout)).toBe("2026-03-06T17:40:00.000Z");
  });

  it.each([
    ["0 2 * *", /has 4 fields, cron takes 5/],
    ["61 2 * * *", /minute field '61' is not valid/],
    ["0 2 * * funday", /day-of-week field/],
    ["*/0 * * * *", /minute field/],
    ["0 5-1 * * *", /hour field '5-1'/],
  ])("refuses %s", async (expr, message) => {
    const result = await cron(expr, "cron_matches", "0");
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(message);
  });
});

// One cron dialect (issue 32, finding 6): the same table as the stack's (test/unit/cron.test.ts).
const table = JSON.parse(fs.readFileSync(path.join(__dirname, "../fixtures/cron-cases.json"), "utf8")) as { cases: [string, string | null][] };

describe("the runtime's cron dialect is the stack's", () => {
  it.each(table.cases)("%j: %s", async (expr, refusal) => {
    // What check_schedule asks: the expression parses, and it fires within cron_next's 8 years.
    const result = await run("bash", ["-c", `source "$1/lib/cron.sh"; cron_parse "$2" || { echo "$cron_error" >&2; exit 3; }; cron_next "$(date +%s)" >/dev/null || { echo "'$2' never fires" >&2; exit 4; }`, "_", runtimeDir, expr]);
    if (refusal === null) expect(result.code, result.stderr).toBe(0);
    else expect(result.stderr).toContain(refusal);
  });
});
