"""The `toast` command line: opens the console, or runs a headless command."""
