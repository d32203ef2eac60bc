"""Submission to the local mail server, and what its refusals mean."""
