"""Read models (SQL and upsert code) and the queries behind checks and history."""
