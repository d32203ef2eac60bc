"""What the connector asks of the desktop: a screen, autostart, notification limits."""
