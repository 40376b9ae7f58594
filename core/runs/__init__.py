"""Runs: queued in SQLite, claimed by the engine, executed as a graph of steps with their
context, settings and access rules."""
