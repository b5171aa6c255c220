//! The `SQLite` schema, created on start when missing.

/// Bumped when the schema changes incompatibly.
pub const SCHEMA_VERSION: i64 = 1;

pub const SCHEMA: &str = r"
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    id    TEXT PRIMARY KEY,
    email TEXT NOT NULL
);
-- Tokens are kept as SHA-256 hashes only.
CREATE TABLE IF NOT EXISTS personal_access_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    name       TEXT NOT NULL,
    obfuscated TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS projects (
    id       TEXT PRIMARY KEY,
    ref      TEXT NOT NULL UNIQUE,
    name     TEXT NOT NULL,
    owner_id TEXT NOT NULL REFERENCES users(id)
);
CREATE TABLE IF NOT EXISTS environments (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    slug       TEXT NOT NULL,
    type       TEXT NOT NULL,
    api_key    TEXT NOT NULL UNIQUE,
    UNIQUE (project_id, slug)
);
CREATE TABLE IF NOT EXISTS env_vars (
    environment_id TEXT NOT NULL REFERENCES environments(id),
    key            TEXT NOT NULL,
    value          TEXT NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (environment_id, key)
);
CREATE TABLE IF NOT EXISTS deployments (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    project_id      TEXT NOT NULL REFERENCES projects(id),
    environment_id  TEXT NOT NULL REFERENCES environments(id),
    short_code      TEXT NOT NULL,
    version         TEXT NOT NULL,
    content_hash    TEXT NOT NULL,
    namespace       TEXT NOT NULL,
    image_tag       TEXT NOT NULL,
    registry_host   TEXT,
    self_hosted     INTEGER NOT NULL,
    image_reference TEXT,
    status          TEXT NOT NULL,
    worker_id       TEXT UNIQUE,
    triggered_by_id TEXT,
    error_data      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    deployed_at     INTEGER,
    failed_at       INTEGER,
    UNIQUE (environment_id, version),
    UNIQUE (project_id, short_code)
);
CREATE TABLE IF NOT EXISTS background_workers (
    id                     TEXT PRIMARY KEY,
    deployment_id          TEXT NOT NULL REFERENCES deployments(id),
    environment_id         TEXT NOT NULL REFERENCES environments(id),
    version                TEXT NOT NULL,
    content_hash           TEXT NOT NULL,
    package_version        TEXT NOT NULL,
    cli_package_version    TEXT,
    local_only             INTEGER NOT NULL,
    supports_lazy_attempts INTEGER,
    metadata               TEXT NOT NULL,
    created_at             INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    id          TEXT PRIMARY KEY,
    worker_id   TEXT NOT NULL REFERENCES background_workers(id),
    slug        TEXT NOT NULL,
    file_path   TEXT NOT NULL,
    export_name TEXT NOT NULL,
    position    INTEGER NOT NULL,
    resource    TEXT NOT NULL,
    UNIQUE (worker_id, slug)
);
-- One row per (environment, label): moving 'current' is a single upsert.
CREATE TABLE IF NOT EXISTS promotions (
    environment_id TEXT NOT NULL REFERENCES environments(id),
    label          TEXT NOT NULL,
    deployment_id  TEXT NOT NULL REFERENCES deployments(id),
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (environment_id, label)
);
-- The plaintext token lives here only between approval and the first poll.
CREATE TABLE IF NOT EXISTS authorization_codes (
    code       TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    user_id    TEXT REFERENCES users(id),
    token      TEXT,
    obfuscated TEXT,
    consumed   INTEGER NOT NULL DEFAULT 0
);
";
