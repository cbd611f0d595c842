-- Per-session staging tables of the batched apply (not a migration: `migrate` runs only the
-- numbered files). A batch's writes are copied here, one table per kind of write, each row
-- tagged with its round: writes of one round touch distinct rows, so each round of each kind
-- is one set-based statement. The rows never outlive the batch that staged them.

create temp table if not exists projection_stage_consent_upsert (
    round integer not null,
    subject text,
    purpose text,
    channel text,
    status text,
    reason text,
    policy_version text,
    since timestamptz,
    last_position bigint
);

create temp table if not exists projection_stage_consent_withdraw (
    round integer not null,
    subject text,
    purpose text,                    -- null: every purpose
    channel text,                    -- null: every channel
    reason text,
    since timestamptz,
    last_position bigint
);

create temp table if not exists projection_stage_suppression_upsert (
    round integer not null,
    subject text,
    scope text,
    reason text,
    since timestamptz,
    last_position bigint
);

create temp table if not exists projection_stage_suppression_lift (
    round integer not null,
    subject text,
    scope text,
    last_position bigint
);

create temp table if not exists projection_stage_undeliverable_lift (
    round integer not null,
    subject text,
    last_position bigint
);

create temp table if not exists projection_stage_policy_acceptance_insert (
    round integer not null,
    subject text,
    version text,
    text_sha256 text,
    accepted_at timestamptz,
    last_position bigint
);

create temp table if not exists projection_stage_rights_open (
    round integer not null,
    request_id uuid,
    subject text,
    right_name text,
    received_at timestamptz,
    due_at timestamptz,
    last_position bigint
);

create temp table if not exists projection_stage_rights_extend (
    round integer not null,
    request_id uuid,
    due_at timestamptz,
    last_position bigint
);

create temp table if not exists projection_stage_rights_close (
    round integer not null,
    request_id uuid,
    outcome text,
    last_position bigint
);

create temp table if not exists projection_stage_purposes_insert (
    round integer not null,
    purpose text,
    legal_basis text,
    max_age_days integer,
    direct_marketing boolean,
    last_position bigint
);

create temp table if not exists projection_stage_policy_versions_insert (
    round integer not null,
    version text,
    text_sha256 text,
    effective_at timestamptz,
    purposes text[],
    requires_reconsent boolean,
    last_position bigint
);

create temp table if not exists projection_stage_restriction_upsert (
    round integer not null,
    subject text,
    scope text,
    since timestamptz,
    last_position bigint
);

create temp table if not exists projection_stage_restriction_lift (
    round integer not null,
    subject text,
    scope text,                      -- null: every scope
    last_position bigint
);

create temp table if not exists projection_stage_interaction_upsert (
    round integer not null,
    subject text,
    last_at timestamptz,
    last_position bigint
);
