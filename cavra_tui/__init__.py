"""What people see and ask for: the Textual console and the `cavra` command line."""
