"""Where the projection's rows live: one interface, a PostgreSQL and a SQLite adapter."""
