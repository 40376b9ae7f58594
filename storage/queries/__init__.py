"""Every read and write Toast makes to the state database, grouped by aggregate (one module
each under storage/queries/); `Queries` is all of them over one connection. No business
rules live here."""

from __future__ import annotations

from storage.queries.audit import AuditQueries
from storage.queries.deployments import DeploymentQueries
from storage.queries.jobs import JobQueries
from storage.queries.ledger import LedgerQueries
from storage.queries.pushes import PushQueries
from storage.queries.releases import ReleaseQueries
from storage.queries.runs import RunQueries
from storage.queries.sessions import SessionQueries
from storage.queries.shared import unfinished_jobs


class Queries(
    DeploymentQueries,
    RunQueries,
    ReleaseQueries,
    LedgerQueries,
    JobQueries,
    AuditQueries,
    PushQueries,
    SessionQueries,
):
    """Typed access to the state database."""


__all__ = ["Queries", "unfinished_jobs"]
