import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { cronProblem } from "../../components/cron";

// One cron dialect (issue 32, finding 6): the stack refuses what the scheduler refuses.
// The same table runs against runtime/lib/cron.sh in test/runtime/cron.test.ts.
const table = JSON.parse(fs.readFileSync(path.join(__dirname, "../fixtures/cron-cases.json"), "utf8")) as { cases: [string, string | null][] };

describe("the stack's cron dialect is the runtime's", () => {
  it.each(table.cases)("%j: %s", (expr, refusal) => {
    const problem = cronProblem(expr);
    if (refusal === null) expect(problem).toBeUndefined();
    else expect(problem).toContain(refusal);
  });
});
