"""Pure rules: no database, no clock, no I/O. Easy to test, easy to read."""
