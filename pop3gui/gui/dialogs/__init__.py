"""Dialogs opened from the properties window."""
