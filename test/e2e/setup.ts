import { execFileSync } from "node:child_process";
import * as path from "node:path";

/** Before the e2e suite: a Docker daemon answers and the test image exists (provision.sh). */
export default function setup(): void {
  execFileSync("bash", [path.resolve(__dirname, "../bed/provision.sh")], { stdio: "inherit" });
}
