"""The pages of the properties window, one module each."""
