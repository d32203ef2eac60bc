"""The PySide6 skin over :mod:`pop3gui.core`: models, widgets, the loop, the tray.

Nothing here decides what happens to mail; it shows the core's data and
events and turns the admin's clicks into core calls.
"""
