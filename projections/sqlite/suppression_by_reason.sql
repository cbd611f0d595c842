-- A file made before suppressions were keyed by reason too (see projections/sql/003_...):
-- SQLite cannot change a primary key, so the table is copied into one with the new key.
alter table suppression rename to suppression_by_scope;
create table suppression (
    subject text not null, scope text not null, reason text not null, since text not null,
    last_position integer not null, active boolean not null default true,
    primary key (subject, scope, reason)
);
insert into suppression (subject, scope, reason, since, last_position, active)
    select subject, scope, reason, since, last_position, active from suppression_by_scope;
drop table suppression_by_scope;
