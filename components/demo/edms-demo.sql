-- The demo EDMS's database (Pulumi.dev.yaml, edms-backup:demo): EDMS-shaped tables with a
-- little data, loaded by the postgres image's entrypoint on first start. The users'
-- passwords are Django pbkdf2_sha256 hashes of demo-admin, demo-qa, demo-author and
-- demo-reviewer: a restore keeps them working.
CREATE TABLE users_user (
  id serial PRIMARY KEY, username text UNIQUE NOT NULL, email text NOT NULL, password text NOT NULL,
  is_active boolean NOT NULL DEFAULT true, date_joined timestamptz NOT NULL DEFAULT now()
);
INSERT INTO users_user (username, email, password) VALUES
  ('admin', 'admin@demo.example', 'pbkdf2_sha256$870000$demosalt0xadmin$dPKa0eXJJDJLrMH5ejj5lzt3actFyA/WVeBpzhEicGs='),
  ('qa.manager', 'qa@demo.example', 'pbkdf2_sha256$870000$demosalt1xqamanager$I/6CgaOVuD1g+9GTR3/JjKsvg3YYsuWQijgBzpRAeyI='),
  ('author', 'author@demo.example', 'pbkdf2_sha256$870000$demosalt2xauthor$rIqtexd1y6FMbgU/jPY/41kqUxMbG+fI1aDMw1P4qQI='),
  ('reviewer', 'reviewer@demo.example', 'pbkdf2_sha256$870000$demosalt3xreviewer$N0wFu/AM8OP3tgBltNGsVpxdqf+J+xqFjnPPvwPaW+s=');

CREATE TABLE documents_document (
  id serial PRIMARY KEY, number text UNIQUE NOT NULL, title text NOT NULL, status text NOT NULL,
  author_id int NOT NULL REFERENCES users_user, created timestamptz NOT NULL
);
INSERT INTO documents_document (number, title, status, author_id, created)
  SELECT 'SOP-' || lpad(g::text, 4, '0'), 'Standard operating procedure ' || g,
         (ARRAY['DRAFT', 'REVIEWED', 'APPROVED', 'EFFECTIVE'])[1 + g % 4], 1 + g % 4, now() - g * interval '1 day'
    FROM generate_series(1, 40) g;

CREATE TABLE documents_documentversion (
  id serial PRIMARY KEY, document_id int NOT NULL REFERENCES documents_document, version int NOT NULL,
  file text NOT NULL, UNIQUE (document_id, version)
);
INSERT INTO documents_documentversion (document_id, version, file)
  SELECT d, v, 'documents/SOP-' || lpad(d::text, 4, '0') || '-v' || v || '.txt'
    FROM generate_series(1, 40) d, generate_series(1, 2) v;

CREATE TABLE audit_audittrail (
  id bigserial PRIMARY KEY, user_id int REFERENCES users_user, action text NOT NULL,
  at timestamptz NOT NULL, details jsonb NOT NULL DEFAULT '{}'
);
INSERT INTO audit_audittrail (user_id, action, at, details)
  SELECT 1 + g % 4, (ARRAY['VIEW', 'EDIT', 'APPROVE', 'LOGIN'])[1 + g % 4], now() - g * interval '1 hour',
         jsonb_build_object('document', 1 + g % 40, 'ip', '10.0.0.' || (1 + g % 200))
    FROM generate_series(1, 500) g;

CREATE TABLE django_session (session_key varchar(40) PRIMARY KEY, session_data text NOT NULL, expire_date timestamptz NOT NULL);
INSERT INTO django_session VALUES ('demo-session-0001', 'e30:demo', now() + interval '14 days');
