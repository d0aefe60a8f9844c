CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    email         TEXT    NOT NULL DEFAULT '',
    realname      TEXT    NOT NULL DEFAULT '',
    comment       TEXT    NOT NULL DEFAULT '',
    password_hash TEXT    NOT NULL,
    sysadmin      INTEGER NOT NULL DEFAULT 0,
    creation_time INTEGER NOT NULL,
    update_time   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS project (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    public        INTEGER NOT NULL DEFAULT 0,
    owner_id      INTEGER REFERENCES users(id) ON DELETE SET NULL,
    creation_time INTEGER NOT NULL,
    update_time   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS member (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id    INTEGER NOT NULL REFERENCES project(id) ON DELETE CASCADE,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role          INTEGER NOT NULL,
    creation_time INTEGER NOT NULL,
    update_time   INTEGER NOT NULL,
    UNIQUE (project_id, user_id)
);
CREATE TABLE IF NOT EXISTS robot (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL,
    project_id    INTEGER REFERENCES project(id) ON DELETE CASCADE,
    level         TEXT    NOT NULL,
    description   TEXT    NOT NULL DEFAULT '',
    secret_hash   TEXT    NOT NULL,
    duration      INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    creation_time INTEGER NOT NULL,
    update_time   INTEGER NOT NULL,
    permissions   TEXT    NOT NULL,
    last_used_at  INTEGER,
    legacy_id     INTEGER,
    legacy_project_id INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS robot_legacy_name ON robot (name) WHERE legacy_id IS NOT NULL;
-- System robots have no project: their names are unique among themselves.
CREATE UNIQUE INDEX IF NOT EXISTS robot_name ON robot (ifnull(project_id, 0), name);
-- The token path looks robots up by (project, name): a plain index the planner can use.
CREATE INDEX IF NOT EXISTS robot_project_name ON robot (project_id, name);
CREATE TABLE IF NOT EXISTS refresh_token (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    robot_id      INTEGER REFERENCES robot(id) ON DELETE CASCADE,
    user_id       INTEGER REFERENCES users(id) ON DELETE CASCADE,
    token_hash    TEXT    NOT NULL UNIQUE,
    client_id     TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    CHECK ((robot_id IS NULL) != (user_id IS NULL))
);
CREATE INDEX IF NOT EXISTS refresh_token_robot ON refresh_token (robot_id);
CREATE INDEX IF NOT EXISTS refresh_token_user ON refresh_token (user_id);
CREATE TABLE IF NOT EXISTS signing_key (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    key_path      TEXT    NOT NULL,
    cert_path     TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    retired_at    INTEGER
);
CREATE TABLE IF NOT EXISTS audit_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    op_time       INTEGER NOT NULL,
    operator      TEXT    NOT NULL,
    operation     TEXT    NOT NULL,
    resource_type TEXT    NOT NULL,
    resource      TEXT    NOT NULL,
    outcome       TEXT    NOT NULL
);
