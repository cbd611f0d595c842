-- Read models fed by the consumers (and, in embedded mode, by the store itself).
-- Every row carries the ledger position of the event that last wrote it: an event applies to a
-- row only if it is newer, so a replayed or duplicated record changes nothing and records of
-- different partitions may arrive in any interleaving.

create table if not exists {schema}.consent_state (
    subject text not null,
    purpose text not null,
    channel text not null,
    status text not null,            -- pending | granted | withdrawn
    reason text,                     -- why withdrawn: user_request, unsubscribed, complaint, ...
    policy_version text,
    since timestamptz not null,
    last_position bigint not null,
    primary key (subject, purpose, channel)
);

create table if not exists {schema}.suppression (
    subject text not null,
    scope text not null,             -- '*' for every marketing message, else a purpose or list:<id>
    reason text not null,            -- unsubscribed | objection | erased
    since timestamptz not null,
    last_position bigint not null,
    primary key (subject, scope)
);

create table if not exists {schema}.policy_acceptance (
    subject text not null,
    version text not null,
    text_sha256 text not null,
    accepted_at timestamptz not null,
    last_position bigint not null,
    primary key (subject, version)
);

create table if not exists {schema}.rights_requests (
    request_id uuid primary key,
    subject text not null,
    right_name text not null,        -- access, erasure, objection, ...
    received_at timestamptz,
    due_at timestamptz not null,
    extended boolean not null default false,
    outcome text,
    last_position bigint not null
);

create table if not exists {schema}.consumer_offsets (
    consumer_group text not null,
    topic text not null,
    partition integer not null,
    next_offset bigint not null,
    primary key (consumer_group, topic, partition)
);
