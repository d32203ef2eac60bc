"""The download/submit loop: cycles, mailboxes, one message's fate, status."""
