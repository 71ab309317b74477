import { execFileSync } from "node:child_process";
import * as path from "node:path";

/** Before the runtime suite: PostgreSQL 15, shellcheck and the other packages it uses. */
export default function setup(): void {
  execFileSync("bash", [path.resolve(__dirname, "../bed/provision.sh"), "--packages-only"], { stdio: "inherit" });
}
