"""Write side: commands, the per-person aggregate, identity and crypto, audit, relay."""
