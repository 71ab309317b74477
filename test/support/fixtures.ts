import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { mustRun } from "./run";

/** Every corner a storage folder can have; the names are those that break line-based tools. */
export const awkwardNames = [
  "plain.pdf",
  "with space.docx",
  "new\nline.txt",
  "tab\there.txt",
  "carriage\rreturn.txt",
  `quote's "double".txt`,
  "back\\slash.txt",
  "ünïcødé – 文書.pdf",
  "-leading-dash.pdf",
  "--",
  " leading space",
  "*glob?[x]",
];

/**
 * Builds a document storage tree under `root` with every case a restore must bring back:
 * the awkward names, nested and empty folders, symlinks (relative, absolute, dangling),
 * hardlinks, odd modes and owners, and nanosecond mtimes. `seed` varies the content.
 */
export async function makeStorageTree(root: string, seed = "a"): Promise<void> {
  fs.mkdirSync(root, { recursive: true });
  const docs = path.join(root, "documents", "2026", "01");
  fs.mkdirSync(docs, { recursive: true });
  fs.mkdirSync(path.join(root, "empty", "nested-empty"), { recursive: true });
  fs.mkdirSync(path.join(root, "private"), { mode: 0o700 });
  for (const [i, name] of awkwardNames.entries()) {
    fs.writeFileSync(path.join(docs, name), `${seed}:${i}:${name}\n`.repeat(i + 1));
  }
  fs.writeFileSync(path.join(root, "empty-file"), "");
  fs.writeFileSync(path.join(root, "random.bin"), crypto.createHash("sha512").update(seed).digest().toString("hex").repeat(4000));
  fs.writeFileSync(path.join(root, "private", "secret.pdf"), `${seed} private\n`, { mode: 0o600 });
  fs.writeFileSync(path.join(root, "script.sh"), "#!/bin/sh\necho hi\n", { mode: 0o755 });
  fs.symlinkSync("documents/2026/01/plain.pdf", path.join(root, "relative-link"));
  fs.symlinkSync("/absolute/target/that/does/not/exist", path.join(root, "dangling-link"));
  fs.symlinkSync("2026", path.join(root, "documents", "latest"));
  fs.symlinkSync("new\nline target", path.join(root, "link\nwith newline"));
  fs.linkSync(path.join(docs, "plain.pdf"), path.join(root, "hardlink-to-plain.pdf"));
  fs.linkSync(path.join(docs, "with space.docx"), path.join(root, "empty", "second name.docx"));
  fs.chmodSync(path.join(docs, "tab\there.txt"), 0o640);
  fs.chmodSync(path.join(root, "empty"), 0o750);
  await mustRun("chown", ["1234:5678", path.join(root, "private", "secret.pdf")]);
  await mustRun("chown", ["-h", "2000:2000", path.join(root, "relative-link")]);
  await mustRun("chown", ["999:999", path.join(root, "private")]);
  // Nanosecond mtimes, folders last (writing into a folder changes its mtime).
  await mustRun("bash", ["-c", `find "$1" -depth -exec touch -h -d @1767225600.123456789 {} +`, "_", root]);
  await mustRun("touch", ["-h", "-d", "@1700000000.987654321", path.join(docs, "new\nline.txt")]);
}

/** Adds, changes and removes a few files: what a day of use does to the storage. */
export function changeStorageTree(root: string, tag: string): void {
  const docs = path.join(root, "documents", "2026", "01");
  fs.writeFileSync(path.join(docs, `new-${tag}.pdf`), `added ${tag}\n`);
  fs.appendFileSync(path.join(docs, "plain.pdf"), `changed ${tag}\n`);
  fs.rmSync(path.join(docs, "-leading-dash.pdf"), { force: true });
  fs.chmodSync(path.join(root, "script.sh"), 0o700);
}

export interface TreeEntry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  mtimeNs: string;
  target?: string;
  sha256?: string;
  /** For a file with several names in the tree: the first of them (sorted). */
  linkedWith?: string;
}

/** Everything a byte-for-byte comparison looks at, for every entry below `root` (and root). */
export function snapshotTree(root: string): Record<string, TreeEntry> {
  const entries: Record<string, TreeEntry> = {};
  const inodes = new Map<bigint, string[]>();
  const walk = (rel: string) => {
    const full = rel === "." ? root : path.join(root, rel);
    const st = fs.lstatSync(full, { bigint: true });
    const entry: TreeEntry = {
      type: st.isDirectory() ? "dir" : st.isSymbolicLink() ? "symlink" : st.isFile() ? "file" : "other",
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtimeNs: st.mtimeNs.toString(),
    };
    if (st.isSymbolicLink()) entry.target = fs.readlinkSync(full);
    if (st.isFile()) {
      entry.size = Number(st.size);
      entry.sha256 = crypto.createHash("sha256").update(fs.readFileSync(full)).digest("hex");
      if (st.nlink > 1n) inodes.set(st.ino, [...(inodes.get(st.ino) ?? []), rel]);
    }
    entries[rel] = entry;
    if (st.isDirectory()) {
      for (const name of fs.readdirSync(full).sort()) walk(rel === "." ? name : path.join(rel, name));
    }
  };
  walk(".");
  for (const names of inodes.values()) {
    if (names.length < 2) continue;
    const first = [...names].sort()[0];
    for (const name of names) entries[name].linkedWith = first;
  }
  return entries;
}

/** Django's pbkdf2_sha256 hash of a password, as Django stores it. */
export function djangoHash(password: string, salt: string, iterations = 1000): string {
  const hash = crypto.pbkdf2Sync(password, salt, iterations, 32, "sha256").toString("base64");
  return `pbkdf2_sha256$${iterations}$${salt}$${hash}`;
}

/** Whether `password` verifies against a Django pbkdf2_sha256 hash (Django's own check). */
export function djangoVerify(password: string, encoded: string): boolean {
  const [algorithm, iterations, salt, hash] = encoded.split("$");
  if (algorithm !== "pbkdf2_sha256") return false;
  const computed = crypto.pbkdf2Sync(password, salt, Number(iterations), 32, "sha256").toString("base64");
  return crypto.timingSafeEqual(Buffer.from(computed), Buffer.from(hash));
}

export const edmsUsers = [
  { username: "admin", password: "admin123", role: "Admin" },
  { username: "author01", password: "test123", role: "Author" },
  { username: "reviewer01", password: "rev!ew 01", role: "Reviewer" },
  { username: "approver01", password: "ápprövér", role: "Approver" },
];

/**
 * SQL that creates an EDMS-shaped database: users with Django password hashes, roles and
 * their assignments, documents and versions, workflows, an audit trail, sessions, and an
 * awkward table; `scale` multiplies the bulk rows (documents, audit trail).
 */
export function edmsSchemaSql(scale = 1): string {
  const users = edmsUsers
    .map((u, i) => `(${i + 1}, '${u.username}', '${u.username}@example.org', '${djangoHash(u.password, `salt${i}x`)}', ${u.role === "Admin"})`)
    .join(",\n");
  const roles = edmsUsers.map((u, i) => `(${i + 1}, ${i + 1}, (SELECT id FROM users_role WHERE name = '${u.role}'))`).join(",\n");
  return `
CREATE TABLE users_user (id serial PRIMARY KEY, username text UNIQUE NOT NULL, email text, password text NOT NULL,
  is_superuser boolean NOT NULL DEFAULT false, is_active boolean NOT NULL DEFAULT true,
  date_joined timestamptz NOT NULL DEFAULT '2026-01-01', last_login timestamptz);
INSERT INTO users_user (id, username, email, password, is_superuser) VALUES ${users};
SELECT setval('users_user_id_seq', (SELECT max(id) FROM users_user));
CREATE TABLE users_role (id serial PRIMARY KEY, name text UNIQUE NOT NULL, permissions jsonb NOT NULL);
INSERT INTO users_role (name, permissions) VALUES
  ('Viewer', '{"documents": "read"}'), ('Author', '{"documents": "write"}'), ('Reviewer', '{"documents": "review"}'),
  ('Approver', '{"documents": "approve"}'), ('Admin', '{"all": true}');
CREATE TABLE users_userrole (id serial PRIMARY KEY, user_id int REFERENCES users_user, role_id int REFERENCES users_role);
INSERT INTO users_userrole (id, user_id, role_id) VALUES ${roles};
CREATE TABLE documents_document (id serial PRIMARY KEY, number text NOT NULL, title text, status text, author_id int REFERENCES users_user,
  file_path text, body text, created timestamptz DEFAULT '2026-01-02');
INSERT INTO documents_document (number, title, status, author_id, file_path, body)
  SELECT 'SOP-' || g, 'Document ' || g || ' – ünïcødé', (ARRAY['DRAFT','REVIEWED','APPROVED','EFFECTIVE'])[1 + g % 4], 1 + g % 4,
         'documents/2026/01/plain.pdf', repeat(md5(g::text), 8)
    FROM generate_series(1, 200 * ${scale}) g;
CREATE TABLE documents_documentversion (id serial PRIMARY KEY, document_id int REFERENCES documents_document, version int, content bytea);
INSERT INTO documents_documentversion (document_id, version, content)
  SELECT 1 + g % (200 * ${scale}), g, decode(md5(g::text), 'hex') FROM generate_series(1, 400 * ${scale}) g;
-- Extracted text: values over 2 kB, which PostgreSQL compresses (TOAST).
CREATE TABLE documents_documenttext (document_id int PRIMARY KEY REFERENCES documents_document, text text);
INSERT INTO documents_documenttext SELECT g, repeat('Extracted text of document ' || g || '. ', 200) FROM generate_series(1, 20) g;
CREATE TABLE workflows_workflowinstance (id serial PRIMARY KEY, document_id int REFERENCES documents_document, state text, history jsonb);
INSERT INTO workflows_workflowinstance (document_id, state, history)
  SELECT g, 'APPROVED', jsonb_build_array(jsonb_build_object('from', 'DRAFT', 'to', 'REVIEWED', 'by', 2)) FROM generate_series(1, 50) g;
CREATE TABLE audit_audittrail (id bigserial PRIMARY KEY, user_id int, action text, at timestamptz, details jsonb);
INSERT INTO audit_audittrail (user_id, action, at, details)
  SELECT 1 + g % 4, 'VIEW', '2026-01-01'::timestamptz + g * interval '1 minute', jsonb_build_object('doc', g % 100, 'ip', '10.0.0.' || g % 250)
    FROM generate_series(1, 1000 * ${scale}) g;
CREATE TABLE django_session (session_key text PRIMARY KEY, session_data text, expire_date timestamptz);
INSERT INTO django_session VALUES ('abc123', 'signed-with-SECRET_KEY', '2027-01-01');
CREATE TABLE "Odd ""Table""\twith tab" (id int, note text);
INSERT INTO "Odd ""Table""\twith tab" VALUES (1, E'line\\nbreak'), (2, NULL);
CREATE SCHEMA reports;
CREATE TABLE reports.summary AS SELECT status, count(*) AS n FROM documents_document GROUP BY status;
CREATE VIEW active_users AS SELECT id, username FROM users_user WHERE is_active;
`;
}
