-- Principals, their hashed tokens, and the audit log. See docs/auth.md.
-- Runs inside the migration runner's transaction: no BEGIN/COMMIT here.

CREATE TABLE principals (
    -- The project's identifier pattern (dispatch.events.Identifier).
    id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'),
    role text NOT NULL
        CHECK (role IN ('desk', 'guard', 'patrol', 'unit', 'sensor', 'commander', 'admin')),
    enterprise_id text CHECK (enterprise_id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'),
    unit_id text CHECK (unit_id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$'),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz,
    -- The same rules as consumers.auth.models.Principal; keep the two in step.
    CONSTRAINT principals_desk_has_enterprise
        CHECK (role <> 'desk' OR enterprise_id IS NOT NULL),
    CONSTRAINT principals_enterprise_only_for_desk_guard_sensor
        CHECK (enterprise_id IS NULL OR role IN ('desk', 'guard', 'sensor')),
    CONSTRAINT principals_unit_roles_have_unit
        CHECK ((role IN ('guard', 'patrol', 'unit')) = (unit_id IS NOT NULL))
);

CREATE TABLE tokens (
    id uuid PRIMARY KEY,
    principal_id text NOT NULL REFERENCES principals (id),
    -- SHA-256 of the secret; the secret itself is never stored.
    token_hash bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    label text NOT NULL DEFAULT '' CHECK (char_length(label) <= 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    expires_at timestamptz,
    revoked_at timestamptz
);

CREATE INDEX tokens_principal_id ON tokens (principal_id);

CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    -- A principal id, or `cli:<os user>` for the command line; not a foreign key, so the
    -- record outlives whatever it names.
    actor text NOT NULL CHECK (char_length(actor) BETWEEN 1 AND 200),
    action text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$'),
    subject text NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 200),
    detail jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX audit_log_subject_at ON audit_log (subject, at);

-- The log is append-only: an UPDATE or DELETE is refused rather than silently rewriting
-- history. A retention job that must prune it disables this trigger explicitly.
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
