"""Messages themselves: addresses, headers, recipients, fingerprints, notices."""
