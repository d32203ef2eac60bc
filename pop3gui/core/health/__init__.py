"""Health and alerts: what each account's cycles did, kept across restarts, and the alerts of ``[alerts]``."""
