"""What the connector keeps between runs: journal, spool, quarantine, lock, paths, secrets."""
