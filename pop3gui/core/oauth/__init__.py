"""Signing in with OAuth2 (Microsoft 365, Outlook.com, Google, any RFC 6749 provider): flows and tokens."""
