-- The data-key table: one row per person and key generation, the key wrapped under the master
-- key. {table} is filled in by ledger/keystore/postgres.py with the configured (schema-qualified)
-- table name. Destroying a key sets wrapped to null and destroyed_at; the row stays, so the
-- next generation number is known and the erasure itself remains on record.
create table if not exists {table} (
    key_id text primary key,
    subject text not null,
    generation integer not null check (generation > 0),
    wrapped bytea,
    created_at timestamptz not null default now(),
    destroyed_at timestamptz,
    unique (subject, generation),
    check ((wrapped is null) = (destroyed_at is not null))
);
