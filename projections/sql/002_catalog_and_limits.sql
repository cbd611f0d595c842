-- What the send decision needs besides consents and suppressions: the catalog of purposes and
-- policy versions, restrictions (GDPR art. 18) and the last interaction of each person.

create table if not exists {schema}.purposes (
    purpose text primary key,
    legal_basis text not null,
    max_age_days integer,
    direct_marketing boolean not null,
    last_position bigint not null
);

create table if not exists {schema}.policy_versions (
    version text primary key,
    text_sha256 text not null,
    effective_at timestamptz not null,
    purposes text[] not null,
    requires_reconsent boolean not null,
    last_position bigint not null
);

create table if not exists {schema}.restriction (
    subject text not null,
    scope text not null,             -- '*' for every purpose, else a purpose
    since timestamptz not null,
    last_position bigint not null,
    primary key (subject, scope)
);

create table if not exists {schema}.interaction (
    subject text primary key,
    last_at timestamptz not null,
    last_position bigint not null
);

-- Lifting a suppression or a restriction keeps its row, marked inactive with the lifting
-- event's position: an older duplicate arriving later cannot bring it back.
alter table {schema}.suppression add column if not exists active boolean not null default true;
alter table {schema}.restriction add column if not exists active boolean not null default true;
