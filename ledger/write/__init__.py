"""The write path: the ledger service, group commit, its cache of people, the importer."""
