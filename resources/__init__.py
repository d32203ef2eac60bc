"""Files shipped with pop3gui: icons, the example configuration, the desktop entry.

Installed as the package ``pop3gui.resources``; read them with
``importlib.resources.files("pop3gui.resources")``.
"""
