"""Modal forms and confirmations: they collect input and dismiss with a value."""
