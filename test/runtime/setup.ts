import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { shareRuntimeCopy } from "../support/run";

/**
 * Before the runtime suite: PostgreSQL 15, shellcheck and the other packages it uses, and
 * one copy of runtime/ that other users can read (removed after the suite).
 */
export default function setup(): () => void {
  execFileSync("bash", [path.resolve(__dirname, "../bed/provision.sh"), "--packages-only"], { stdio: "inherit" });
  return shareRuntimeCopy();
}
