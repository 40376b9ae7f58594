"""Is a subdomain free to deploy to? Checked against the state database (a live deployment
of that name) and Route53 (a record Toast does not own), as the deploy's check step will."""

from __future__ import annotations

from core.cloud.aws import Aws, AwsError
from core.cloud.dns_owner import hosted_zone_id, records_at, refuse_foreign
from core.profile.config import Profile, is_dns_label
from core.profile.installation import installation_id
from core.profile.targets import Target
from core.runs.failures import StepFailed
from storage import Queries


async def name_problem(queries: Queries, target: Target, subdomain: str) -> str | None:
    """Why `subdomain` cannot be deployed to now, or None when it can."""
    if not is_dns_label(subdomain):
        return None  # the spec's own rule says what is wrong with it
    existing = await queries.get_deployment(subdomain)
    if existing is not None and existing.state not in ("destroyed", "failed"):
        return f"{subdomain} is already deployed ({existing.state}); redeploy it instead"
    profile: Profile = target.profile
    fqdn = f"{subdomain}.{profile.base_domain}"
    try:
        aws = await Aws.shared(target)  # the console's one client per account and region
        zone = await hosted_zone_id(aws, profile)
        refuse_foreign(await records_at(aws, zone, fqdn), installation_id())
    except StepFailed as exc:
        return str(exc)
    except AwsError as exc:
        return f"could not check {fqdn} in Route53: {exc}"
    return None
