-- The projection tables of the embedded mode, in the ledger's SQLite file. Same columns and
-- meaning as projections/sql/ (PostgreSQL); times are ISO 8601 text, lists JSON text.
create table if not exists consent_state (
    subject text not null, purpose text not null, channel text not null,
    status text not null, reason text, policy_version text, since text not null,
    last_position integer not null, primary key (subject, purpose, channel)
);
create table if not exists suppression (
    subject text not null, scope text not null, reason text not null, since text not null,
    last_position integer not null, active boolean not null default true,
    primary key (subject, scope, reason)
);
create table if not exists policy_acceptance (
    subject text not null, version text not null, text_sha256 text not null,
    accepted_at text not null, last_position integer not null, primary key (subject, version)
);
create table if not exists rights_requests (
    request_id text primary key, subject text not null, right_name text not null,
    received_at text, due_at text not null, extended boolean not null default false,
    outcome text, last_position integer not null
);
create table if not exists purposes (
    purpose text primary key, legal_basis text not null, max_age_days integer,
    direct_marketing boolean not null, last_position integer not null
);
create table if not exists policy_versions (
    version text primary key, text_sha256 text not null, effective_at text not null,
    purposes text not null, requires_reconsent boolean not null, last_position integer not null
);
create table if not exists restriction (
    subject text not null, scope text not null, since text not null,
    last_position integer not null, active boolean not null default true,
    primary key (subject, scope)
);
create table if not exists interaction (
    subject text primary key, last_at text not null, last_position integer not null
);
create table if not exists projection_position (
    name text primary key, position integer not null
);
