"""Toast's engine, as packages by concern: profile, repo, runs, steps, commands, cloud,
host, views and the sandbox. Never imports textual or rich (an import contract in
pyproject.toml says so, and tests/test_layers.py checks it)."""
