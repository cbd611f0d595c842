-- An unsubscribe and an objection with the same scope are two facts: keyed by scope alone, an
-- unsubscribe from everything replaced an objection to all direct marketing (and a later
-- consent then lifted it). Rows are keyed by reason too; the change runs once per table.
do $$
begin
    if (
        select array_length(i.indkey::int2[], 1)
        from pg_index i
        where i.indrelid = '{schema}.suppression'::regclass and i.indisprimary
    ) = 2 then
        alter table {schema}.suppression drop constraint suppression_pkey;
        alter table {schema}.suppression add primary key (subject, scope, reason);
    end if;
end
$$;
