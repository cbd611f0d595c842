-- The data-key table: one row per person and key generation, the key wrapped under the master
-- key. Destroying a key sets wrapped to null and destroyed_at; the row stays, so the next
-- generation number is known and the erasure itself remains on record. Times are UTC ISO 8601.
create table if not exists data_keys (
    key_id text primary key,
    subject text not null,
    generation integer not null check (generation > 0),
    wrapped blob,
    created_at text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    destroyed_at text,
    unique (subject, generation),
    check ((wrapped is null) = (destroyed_at is not null))
);
