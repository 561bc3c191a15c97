"""The command line: parses and renders only; each command calls one core function."""
