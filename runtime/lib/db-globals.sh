# shellcheck shell=bash
# What a database carries outside its own dump: its database-level state (settings, role
# settings in it, comment, grants, connection limit) and the roles it references. A
# backup records both in meta/database.json and meta/roles.json; a restore carries the
# state onto the database it loads and creates the roles a new instance lacks.

# The database-level state of database :'name', as one JSON line.
EDMS_DATABASE_STATE_SQL=$(cat <<'SQL'
SELECT json_build_object(
  'settings', coalesce((SELECT json_agg(json_build_object('role', r.rolname, 'name', split_part(c, '=', 1), 'value', substr(c, strpos(c, '=') + 1)))
                          FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole CROSS JOIN LATERAL unnest(s.setconfig) c
                         WHERE s.setdatabase = d.oid), '[]'::json),
  'comment', shobj_description(d.oid, 'pg_database'),
  'acl', (SELECT json_agg(json_build_object('grantee', CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END,
                                            'privilege', a.privilege_type, 'grantable', a.is_grantable))
            FROM aclexplode(d.datacl) a),
  'connlimit', d.datconnlimit)
  FROM pg_database d WHERE d.datname = :'name'
SQL
)

# The roles the database references, as one JSON array (:passwords: pg_authid where this
# user may read password hashes, else pg_roles).
EDMS_ROLES_SQL=$(cat <<'SQL'
WITH db AS (SELECT oid FROM pg_database WHERE datname = current_database()),
refs AS (
  SELECT refobjid AS oid FROM pg_shdepend, db
   WHERE refclassid = 'pg_authid'::regclass
     AND (dbid = db.oid OR (dbid = 0 AND classid = 'pg_database'::regclass AND objid = db.oid))
  UNION SELECT setrole FROM pg_db_role_setting, db WHERE setdatabase = db.oid AND setrole <> 0
  UNION SELECT datdba FROM pg_database, db WHERE pg_database.oid = db.oid),
roles AS (
  SELECT r.*, r.rolsuper OR r.rolname = current_user AS name_only,
         (SELECT a.rolpassword FROM :"passwords" a WHERE a.oid = r.oid AND a.rolpassword <> '********') AS password
    FROM pg_roles r JOIN refs USING (oid) WHERE r.rolname !~ '^pg_')
SELECT coalesce(json_agg(json_build_object(
  'name', rolname,
  'create', CASE WHEN name_only THEN format('CREATE ROLE %I NOLOGIN', rolname)
            ELSE format('CREATE ROLE %I WITH %s %s %s %s %s CONNECTION LIMIT %s%s%s', rolname,
                   CASE WHEN rolinherit THEN 'INHERIT' ELSE 'NOINHERIT' END,
                   CASE WHEN rolcreaterole THEN 'CREATEROLE' ELSE 'NOCREATEROLE' END,
                   CASE WHEN rolcreatedb THEN 'CREATEDB' ELSE 'NOCREATEDB' END,
                   CASE WHEN rolcanlogin THEN 'LOGIN' ELSE 'NOLOGIN' END,
                   CASE WHEN rolbypassrls THEN 'BYPASSRLS' ELSE 'NOBYPASSRLS' END,
                   rolconnlimit,
                   CASE WHEN password IS NOT NULL THEN format(' PASSWORD %L', password) ELSE '' END,
                   CASE WHEN rolvaliduntil IS NOT NULL THEN format(' VALID UNTIL %L', rolvaliduntil) ELSE '' END) END,
  'memberOf', (SELECT coalesce(json_agg(g.rolname), '[]'::json) FROM pg_auth_members m JOIN roles g ON g.oid = m.roleid WHERE m.member = roles.oid)
  ) ORDER BY rolname), '[]'::json)
  FROM roles
SQL
)

# database_globals_sql: psql input that prints the database's state (one JSON line), then
# its roles (a JSON array), each reply ended by __EDMS_END__: what a backup records in
# meta/database.json and meta/roles.json, read in the dump's snapshot session. Roles are
# those pg_shdepend says its objects, grants and policies depend on, those with settings in
# it, and its owner; each with the statement that creates it (password hash included where
# this user may read it), except superusers and the connecting role, which are recorded by
# name only (a restore that lacks one creates it NOLOGIN, without attributes, so that
# grants to it load).
database_globals_sql() {
  printf '%s\n' "SELECT current_database() AS name, CASE WHEN rolsuper THEN 'pg_authid' ELSE 'pg_roles' END AS passwords FROM pg_roles WHERE rolname = current_user \\gset" \
    "$EDMS_DATABASE_STATE_SQL;" '\echo __EDMS_END__' "$EDMS_ROLES_SQL;" '\echo __EDMS_END__'
}

# roles_table BACKUP_DIR: SQL that loads meta/roles.json into the temporary table
# edms_roles (one row, j): the role list holds password hashes, so it reaches psql as data
# on its standard input, never as a -v argument on its command line (which ps shows).
roles_table() {
  local json
  json=$(<"$1/meta/roles.json")
  json=${json//\\/\\\\} json=${json//$'\n'/\\n} json=${json//$'\r'/\\r} json=${json//$'\t'/\\t}
  printf '%s\n' "CREATE TEMP TABLE edms_roles (j json);" "COPY edms_roles FROM STDIN;" "$json" '\.'
}

# missing_roles BACKUP_DIR: the names of the roles the backup records that this server
# lacks, one a line.
missing_roles() {
  [[ -f "$1/meta/roles.json" ]] || return 0
  {
    roles_table "$1"
    cat <<'SQL'
SELECT r->>'name' FROM edms_roles, json_array_elements(j) r
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r->>'name') ORDER BY 1
SQL
  } | psql_maintenance
}

# create_missing_roles BACKUP_DIR: creates the roles the server lacks, and their
# memberships among the recorded roles; dies naming each role and its statement when this
# user may not create roles. Roles are server-wide and only ever added.
create_missing_roles() {
  local dir=$1 missing can
  missing=$(missing_roles "$dir") || die "cannot read the roles of backup $id (meta/roles.json): restore another backup"
  [[ -n "$missing" ]] || return 0
  can=$(psql_maintenance -c "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")
  if [[ "$can" != t ]]; then
    local statements
    # Without the password hashes: the message reaches logs and notifications.
    statements=$({
      roles_table "$dir"
      cat <<'SQL'
SELECT string_agg(regexp_replace(r->>'create', ' PASSWORD ''[^'']*''', ' PASSWORD ''...''', 'g'), '; ' ORDER BY r->>'name')
  FROM edms_roles, json_array_elements(j) r
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r->>'name')
SQL
    } | psql_maintenance)
    die "the backup's database references role(s) this server lacks: ${missing//$'\n'/, }; PGUSER may not create roles: create them as a superuser ($statements; the password hashes are in $dir/meta/roles.json) and run the restore again; nothing was changed"
  fi
  local err
  err=$({
    roles_table "$dir"
    cat <<'SQL'
CREATE TEMP TABLE edms_new_roles AS
SELECT r->>'name' AS name, r->>'create' AS stmt, r->'memberOf' AS member_of
  FROM edms_roles, json_array_elements(j) r WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r->>'name');
SELECT stmt FROM edms_new_roles ORDER BY name \gexec
SELECT format('GRANT %I TO %I', g, n.name) FROM edms_new_roles n CROSS JOIN LATERAL json_array_elements_text(n.member_of) g
 WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = g) \gexec
SQL
  } | psql_maintenance 2>&1 >/dev/null) || die "cannot create the role(s) the backup's database references (${missing//$'\n'/, }): $(first_error_line "$err"); nothing else was changed"
  say "created role(s) the backup's database references: ${missing//$'\n'/, }"
  created_roles=${missing//$'\n'/, }
}
