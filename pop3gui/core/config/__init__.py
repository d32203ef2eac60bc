"""The configuration: its model, how it is read and written, and its checks."""
