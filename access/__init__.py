"""Access to the API: keys, their scopes, and their storage."""
