"""The store: engine, models, ledger SQL, the subscriber service, import/export, bounce policy."""
