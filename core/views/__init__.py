"""The read side the CLI and the console share: read models, log tailing, site addresses."""
