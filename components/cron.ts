/**
 * The runtime's cron dialect (runtime/lib/cron.sh), checked at `pulumi preview`: five fields
 * of numbers, `*`, lists, ranges, steps and month and weekday names; no `L`, `W`, `#` or `?`,
 * which cron-parser takes and the scheduler would refuse (it would crash-loop). One table of
 * cases (test/fixtures/cron-cases.json) runs against both.
 */

interface Field {
  name: string;
  min: number;
  max: number;
  names?: string[];
}

const fields: Field[] = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day-of-month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12, names: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"] },
  { name: "day-of-week", min: 0, max: 7, names: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] },
];

/** Why the runtime would refuse `expr`, or undefined when it takes it. */
export function cronProblem(expr: string, from: Date = new Date()): string | undefined {
  // bash's read -a splits on spaces, tabs and newlines only.
  const parts = expr.split(/[ \t\n]+/).filter((p) => p !== "");
  if (parts.length !== 5) {
    return `'${expr}' has ${parts.length} fields, cron takes 5 (minute hour day-of-month month day-of-week), e.g. '0 2 * * *'`;
  }
  const values: Set<number>[] = [];
  for (let i = 0; i < 5; i++) {
    const set = expand(parts[i], fields[i]);
    if (!set) {
      const f = fields[i];
      return `${f.name} field '${parts[i]}' is not valid: use numbers ${f.min}-${f.max}, '*', lists (1,5), ranges (1-5) and steps (*/15)`;
    }
    values.push(set);
  }
  if (values[4].has(7)) values[4].add(0);
  const domAny = parts[2].startsWith("*");
  const dowAny = parts[4].startsWith("*");
  if (!firesWithin(values[2], values[3], values[4], domAny || dowAny, from)) {
    return `'${expr}' never fires (no day matches it, e.g. 31 February): set days that exist`;
  }
  return undefined;
}

/** A field's values, as cron_field expands them; undefined when it is not valid. */
function expand(raw: string, field: Field): Set<number> | undefined {
  let text = raw.toLowerCase();
  // cron_names: each name replaced by its number wherever it stands.
  field.names?.forEach((n, i) => (text = text.split(n).join(String(i + (field.names![0] === "jan" ? 1 : 0)))));
  if (text === "" || text.startsWith(",") || text.endsWith(",") || text.includes(",,")) return undefined;
  const out = new Set<number>();
  for (const item of text.split(",")) {
    const [range, stepText, extra] = item.split("/");
    if (extra !== undefined) return undefined;
    let step = 1;
    if (stepText !== undefined) {
      if (!/^[0-9]+$/.test(stepText) || Number(stepText) === 0) return undefined;
      step = Number(stepText);
    }
    let lo: number;
    let hi: number;
    let m: RegExpExecArray | null;
    if (range === "*") {
      [lo, hi] = [field.min, field.max];
    } else if ((m = /^([0-9]+)-([0-9]+)$/.exec(range))) {
      [lo, hi] = [Number(m[1]), Number(m[2])];
    } else if (/^[0-9]+$/.test(range)) {
      lo = Number(range);
      hi = stepText !== undefined ? field.max : lo;
    } else {
      return undefined;
    }
    if (!(lo >= field.min && hi <= field.max && lo <= hi)) return undefined;
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

/** Whether some day of the next 2930 (cron_next's 8 years) matches, by cron's day rule. */
function firesWithin(doms: Set<number>, months: Set<number>, dows: Set<number>, both: boolean, from: Date): boolean {
  const day = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate()));
  for (let i = 0; i <= 2930; i++, day.setUTCDate(day.getUTCDate() + 1)) {
    if (!months.has(day.getUTCMonth() + 1)) continue;
    const dom = doms.has(day.getUTCDate());
    const dow = dows.has(day.getUTCDay());
    if (both ? dom && dow : dom || dow) return true;
  }
  return false;
}
