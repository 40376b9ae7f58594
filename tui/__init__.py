"""The Textual console. Observes and commands the engine; never blocks; all I/O in workers."""
