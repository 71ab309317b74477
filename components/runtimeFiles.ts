import * as fs from "node:fs";
import * as path from "node:path";

/** Where the runtime lives in the backup and restore containers. */
export const runtimeMount = "/opt/edms-backup";
/** The repository's runtime/ folder: the one source of the files uploaded to containers. */
export const runtimeDir = path.resolve(__dirname, "..", "runtime");

export interface RuntimeFile {
  /** Path inside the container. */
  file: string;
  content: string;
  executable: boolean;
}

/** Every file of runtime/, read at deploy time, with its path in the container. */
export function runtimeFiles(dir: string = runtimeDir): RuntimeFile[] {
  const files: RuntimeFile[] = [];
  const walk = (rel: string) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const relPath = path.posix.join(rel, entry.name);
      if (entry.isDirectory()) {
        walk(relPath);
      } else if (entry.isFile()) {
        const full = path.join(dir, relPath);
        files.push({
          file: path.posix.join(runtimeMount, relPath),
          content: fs.readFileSync(full, "utf8"),
          executable: (fs.statSync(full).mode & 0o111) !== 0,
        });
      }
    }
  };
  walk("");
  if (!files.some((f) => f.file === `${runtimeMount}/edms-backup`)) {
    throw new Error(`runtime files not found in ${dir}: run pulumi from a checkout of edms-backup`);
  }
  return files;
}
