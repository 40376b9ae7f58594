"""Numbered schema migrations, applied in order at open and tracked in PRAGMA user_version.

Each migration is a list of single statements (not a script) so that it runs inside
the caller's transaction: sqlite3's executescript() would commit half-way.
Never edit a released migration; append a new one.
"""

from __future__ import annotations

MIGRATIONS: list[list[str]] = [
    # 1: deployments, their runs and steps, releases, and the resource ledger.
    [
        """
        CREATE TABLE deployments (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            profile TEXT NOT NULL,
            repo TEXT NOT NULL,
            branch TEXT NOT NULL,
            subdomain TEXT NOT NULL,
            fqdn TEXT NOT NULL UNIQUE,
            build_type TEXT NOT NULL CHECK (build_type IN ('static', 'node')),
            node_version TEXT NOT NULL,
            install_cmd TEXT NOT NULL,
            build_cmd TEXT NOT NULL,
            output_dir TEXT,
            start_cmd TEXT,
            port INTEGER,
            instance_type TEXT NOT NULL,
            env_json TEXT NOT NULL DEFAULT '[]',
            state TEXT NOT NULL DEFAULT 'new',
            current_release_id INTEGER,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )
        """,
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            deployment_id INTEGER NOT NULL REFERENCES deployments(id),
            kind TEXT NOT NULL CHECK (kind IN ('deploy', 'redeploy', 'rollback', 'destroy')),
            trigger TEXT NOT NULL,
            commit_sha TEXT,
            commit_message TEXT,
            state TEXT NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
            created_at REAL NOT NULL,
            started_at REAL,
            ended_at REAL,
            error TEXT
        )
        """,
        "CREATE INDEX runs_by_deployment ON runs(deployment_id, id)",
        """
        CREATE TABLE steps (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'skipped')),
            started_at REAL,
            ended_at REAL,
            detail TEXT,
            error TEXT,
            UNIQUE (run_id, name)
        )
        """,
        """
        CREATE TABLE releases (
            id INTEGER PRIMARY KEY,
            deployment_id INTEGER NOT NULL REFERENCES deployments(id),
            sha TEXT NOT NULL,
            path TEXT NOT NULL,
            built_at REAL NOT NULL,
            run_id INTEGER REFERENCES runs(id),
            UNIQUE (deployment_id, sha)
        )
        """,
        """
        CREATE TABLE resources (
            id INTEGER PRIMARY KEY,
            deployment_id INTEGER REFERENCES deployments(id),
            run_id INTEGER REFERENCES runs(id),
            profile TEXT NOT NULL,
            kind TEXT NOT NULL,
            resource_id TEXT NOT NULL,
            region TEXT NOT NULL,
            created_at REAL NOT NULL,
            deleted_at REAL,
            attributes_json TEXT NOT NULL DEFAULT '{}',
            UNIQUE (kind, resource_id, region)
        )
        """,
        "CREATE INDEX resources_open ON resources(deployment_id) WHERE deleted_at IS NULL",
    ],
    # 2: the work queue (runs claimed with a lease), run events and the audit trail.
    [
        """
        CREATE TABLE jobs (
            run_id INTEGER PRIMARY KEY REFERENCES runs(id),
            deployment_id INTEGER NOT NULL REFERENCES deployments(id),
            state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'claimed', 'done')),
            owner TEXT,
            lease_expires_at REAL,
            heartbeat_at REAL,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL
        )
        """,
        "CREATE INDEX jobs_ready ON jobs(state, created_at)",
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            at REAL NOT NULL,
            step TEXT,
            level TEXT NOT NULL DEFAULT 'info',
            message TEXT NOT NULL
        )
        """,
        "CREATE INDEX events_by_run ON events(run_id, id)",
        """
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            detail TEXT
        )
        """,
    ],
    # 3: what the engine needs to resume and report: step outputs, release runtime details,
    # certificate expiry and the health-check path.
    [
        "ALTER TABLE steps ADD COLUMN output_json TEXT",
        "ALTER TABLE releases ADD COLUMN attributes_json TEXT NOT NULL DEFAULT '{}'",
        "ALTER TABLE deployments ADD COLUMN cert_expires_at REAL",
        "ALTER TABLE deployments ADD COLUMN health_path TEXT NOT NULL DEFAULT '/'",
    ],
    # 4: a deployment's whole life. Releases are immutable directories, so one commit may
    # be built more than once (a forced rebuild): the (deployment, sha) uniqueness goes.
    # Runs carry their own settings (profile overrides and faults given when queued), a
    # forced flag and the name of their secrets spool; jobs remember why an attempt ended.
    [
        """
        CREATE TABLE releases_v4 (
            id INTEGER PRIMARY KEY,
            deployment_id INTEGER NOT NULL REFERENCES deployments(id),
            sha TEXT NOT NULL,
            path TEXT NOT NULL,
            built_at REAL NOT NULL,
            run_id INTEGER REFERENCES runs(id),
            attributes_json TEXT NOT NULL DEFAULT '{}',
            UNIQUE (deployment_id, path)
        )
        """,
        "INSERT INTO releases_v4 (id, deployment_id, sha, path, built_at, run_id, attributes_json)"
        " SELECT id, deployment_id, sha, path, built_at, run_id, attributes_json FROM releases",
        "DROP TABLE releases",
        "ALTER TABLE releases_v4 RENAME TO releases",
        "CREATE INDEX releases_by_deployment ON releases(deployment_id, built_at)",
        "ALTER TABLE runs ADD COLUMN settings_json TEXT NOT NULL DEFAULT '{}'",
        "ALTER TABLE runs ADD COLUMN force INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE runs ADD COLUMN secrets_spool TEXT",
        "ALTER TABLE jobs ADD COLUMN last_error TEXT",
    ],
    # 5: real projects. An app may live in a subdirectory (root_dir) of a monorepo whose
    # install runs at the workspace root (install_dir); the detected build plan, with where
    # each value came from, is kept as it was when the deployment was made.
    [
        "ALTER TABLE deployments ADD COLUMN root_dir TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE deployments ADD COLUMN install_dir TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE deployments ADD COLUMN plan_json TEXT",
    ],
    # 6: every certificate Toast asked a CA for, so Let's Encrypt's duplicate-certificate
    # limit (5 per exact set of names per 7 days) is known before a request would pass it.
    [
        """
        CREATE TABLE certificate_requests (
            id INTEGER PRIMARY KEY,
            fqdn TEXT NOT NULL,
            ca TEXT NOT NULL,
            requested_at REAL NOT NULL,
            deployment_id INTEGER REFERENCES deployments(id),
            run_id INTEGER REFERENCES runs(id)
        )
        """,
        "CREATE INDEX certificate_requests_by_name ON certificate_requests(fqdn, ca, requested_at)",
    ],
    # 7: redeploy on push (`toast serve`). Every webhook delivery is kept once (a redelivery
    # of the same id is answered and ignored) with what became of it; the poller remembers
    # each deployment's branch head and its ETag for conditional requests.
    [
        """
        CREATE TABLE webhook_deliveries (
            delivery_id TEXT PRIMARY KEY,
            deployment_id INTEGER REFERENCES deployments(id),
            event TEXT NOT NULL,
            received_at REAL NOT NULL,
            remote TEXT,
            outcome TEXT NOT NULL,
            reason TEXT NOT NULL,
            run_id INTEGER REFERENCES runs(id)
        )
        """,
        "CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries(received_at)",
        """
        CREATE TABLE branch_heads (
            deployment_id INTEGER PRIMARY KEY REFERENCES deployments(id),
            sha TEXT,
            etag TEXT,
            checked_at REAL NOT NULL
        )
        """,
    ],
    # 8: the SSH console's connection log: who, with which key, from where, for how long,
    # and how many bytes each way.
    [
        """
        CREATE TABLE ssh_sessions (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            address TEXT NOT NULL,
            kind TEXT NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL,
            bytes_in INTEGER NOT NULL DEFAULT 0,
            bytes_out INTEGER NOT NULL DEFAULT 0
        )
        """,
        "CREATE INDEX ssh_sessions_by_time ON ssh_sessions(started_at)",
    ],
]

LATEST_VERSION = len(MIGRATIONS)
