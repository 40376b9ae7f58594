"""Profiles from config.toml: which AWS account, region, zone and defaults a deploy uses.

Credentials are never read or copied here: a profile names an AWS profile and boto3's
standard credential chain does the rest.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

SANDBOX_PROFILE = "sandbox"
SANDBOX_BASE_DOMAIN = "sandbox.test"
AL2023_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"

_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
_INSTANCE_TYPE = re.compile(r"[a-z][a-z0-9-]*\.[a-z0-9]+")
_ZONE_ID = re.compile(r"Z[A-Z0-9]{1,31}")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_KEY_NAME = re.compile(r"[A-Za-z0-9 ._:/@-]{1,255}")
_PROFILE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ConfigError(Exception):
    """config.toml is unreadable or breaks a rule. Names the file, the key and the rule."""

    def __init__(self, path: Path, key: str | None, problem: str) -> None:
        self.path = path
        self.key = key
        self.problem = problem
        where = f"{path}: {key}" if key else str(path)
        super().__init__(f"invalid config {where}: {problem}")


@dataclass(frozen=True)
class Profile:
    """One AWS target. Every field is documented where it is declared."""

    name: str
    #: Named profile in ~/.aws/config whose credentials boto3 uses; None = default chain.
    aws_profile: str | None = None
    #: AWS region for every resource of this profile.
    region: str = "us-east-1"
    #: Route53 hosted zone id; looked up from base_domain when omitted.
    hosted_zone_id: str | None = None
    #: Apps are served at <subdomain>.<base_domain>.
    base_domain: str = ""
    #: Default EC2 instance type for new deployments.
    instance_type: str = "t3.small"
    #: SSM public parameter naming the AMI to launch.
    ami_parameter: str = AL2023_PARAMETER
    #: EC2 key pair Toast creates (and owns) for SSH.
    key_pair: str = "toast"
    #: Only this CIDR may reach SSH (port 22) on instances. Unset: your public address as
    #: checkip_url sees it, as a /32 (never the whole internet).
    operator_cidr: str | None = None
    #: The subnet instances go in; unset: a public-IP subnet of the region's default VPC.
    subnet_id: str | None = None
    #: Where Toast asks for your public address when operator_cidr is not set.
    checkip_url: str = "https://checkip.amazonaws.com"
    #: Where `toast serve` (and the engine) announce deploys: Apprise URLs (slack://,
    #: discord://, ntfys://, mailtos://, jsons://, ...), or env:NAME to read one from the
    #: environment. They carry secrets: never logged or shown unredacted.
    notify: tuple[str, ...] = ()
    #: The public base URL at which GitHub reaches `toast serve`'s webhook receiver (behind
    #: your TLS proxy); unset: pushes are found by polling.
    webhook_url: str | None = None
    #: Custom AWS endpoint (the sandbox sets this; leave unset for real AWS).
    endpoint_url: str | None = None
    #: Old releases kept on the instance after a successful switch (the live one and the
    #: newest rollback target are always kept).
    keep_releases: int = 5
    #: Let's Encrypt's "production" CA, or "staging" for rehearsals on a real account
    #: (untrusted certificates, far higher limits).
    acme: str = "production"

    @property
    def is_sandbox(self) -> bool:
        return self.name == SANDBOX_PROFILE


#: The console's themes ([console] theme = ...).
THEMES = ("dark", "light", "high-contrast")


@dataclass(frozen=True)
class ConsoleSettings:
    """[console] in config.toml."""

    theme: str = "dark"


@dataclass(frozen=True)
class ServeSettings:
    """[serve] in config.toml: `toast serve`'s defaults (its flags win)."""

    webhook_listen: str = "127.0.0.1:8787"
    poll_interval: float = 60.0
    poll: bool = True


#: What [sandbox] may set on the built-in sandbox profile.
SANDBOX_KEYS = ("webhook_url", "notify")


@dataclass(frozen=True)
class Config:
    path: Path
    profiles: dict[str, Profile]
    default_profile: str | None
    console: ConsoleSettings = ConsoleSettings()
    serve: ServeSettings = ServeSettings()
    #: [sandbox]: push and notification settings for the built-in sandbox profile.
    sandbox: dict[str, Any] = field(default_factory=dict)

    def profile(self, name: str) -> Profile:
        if name == SANDBOX_PROFILE:
            return dataclasses.replace(sandbox_profile(), **self.sandbox)
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted([*self.profiles, SANDBOX_PROFILE]))
            raise ConfigError(
                self.path, "profile", f"no profile named {name!r} (known: {known})"
            ) from None


def sandbox_profile(endpoint_url: str | None = None) -> Profile:
    """The built-in profile that targets the local sandbox cloud."""
    return Profile(
        name=SANDBOX_PROFILE,
        region="us-east-1",
        base_domain=SANDBOX_BASE_DOMAIN,
        instance_type="t3.micro",
        key_pair="toast-sandbox",
        endpoint_url=endpoint_url,
    )


_PROFILE_KEYS = {f.name for f in fields(Profile)} - {"name"}


def load_config(path: Path) -> Config:
    """Read and validate config.toml. A missing file is an empty config, not an error."""
    if not path.exists():
        return Config(path=path, profiles={}, default_profile=None)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"not valid TOML ({exc})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, f"cannot be read ({exc})") from exc

    unknown = set(raw) - {"default_profile", "profiles", "console", "serve", "sandbox"}
    if unknown:
        raise ConfigError(
            path,
            sorted(unknown)[0],
            "unknown key (expected default_profile, profiles, console, serve, sandbox)",
        )
    console = _parse_console(path, raw.get("console", {}))
    serve = _parse_serve(path, raw.get("serve", {}))
    sandbox = _parse_sandbox(path, raw.get("sandbox", {}))
    tables = raw.get("profiles", {})
    if not isinstance(tables, dict):
        raise ConfigError(path, "profiles", "must be a table of [profiles.NAME] tables")
    profiles = {name: _parse_profile(path, name, table) for name, table in tables.items()}

    default = raw.get("default_profile")
    if default is not None:
        if not isinstance(default, str):
            raise ConfigError(path, "default_profile", "must be a string")
        if default not in profiles and default != SANDBOX_PROFILE:
            raise ConfigError(path, "default_profile", f"names no profile ({default!r})")
    return Config(
        path=path,
        profiles=profiles,
        default_profile=default,
        console=console,
        serve=serve,
        sandbox=sandbox,
    )


def _parse_serve(path: Path, table: Any) -> ServeSettings:
    if not isinstance(table, dict):
        raise ConfigError(path, "serve", "must be a table ([serve])")
    unknown = set(table) - {f.name for f in fields(ServeSettings)}
    if unknown:
        raise ConfigError(
            path,
            f"serve.{sorted(unknown)[0]}",
            "unknown key (expected webhook_listen, poll_interval, poll)",
        )
    listen = table.get("webhook_listen", ServeSettings.webhook_listen)
    if not isinstance(listen, str) or parse_listen(listen) is None:
        raise ConfigError(path, "serve.webhook_listen", f"must be HOST:PORT (got {listen!r})")
    interval = table.get("poll_interval", ServeSettings.poll_interval)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval < 1:
        raise ConfigError(
            path,
            "serve.poll_interval",
            f"must be a number of seconds, 1 or more (got {interval!r})",
        )
    poll = table.get("poll", True)
    if not isinstance(poll, bool):
        raise ConfigError(path, "serve.poll", f"must be true or false (got {poll!r})")
    return ServeSettings(webhook_listen=listen, poll_interval=float(interval), poll=poll)


def _parse_sandbox(path: Path, table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(path, "sandbox", "must be a table ([sandbox])")
    unknown = set(table) - set(SANDBOX_KEYS)
    if unknown:
        raise ConfigError(
            path, f"sandbox.{sorted(unknown)[0]}", "unknown key (expected webhook_url, notify)"
        )
    return _push_settings(path, "sandbox", table)


def _push_settings(path: Path, prefix: str, table: dict[str, Any]) -> dict[str, Any]:
    """webhook_url and notify, checked; returned as Profile fields."""
    out: dict[str, Any] = {}
    if "webhook_url" in table:
        url = table["webhook_url"]
        if not isinstance(url, str) or not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
            raise ConfigError(
                path,
                f"{prefix}.webhook_url",
                f"must be the http(s):// URL GitHub reaches toast serve at (got {url!r})",
            )
        out["webhook_url"] = url
    if "notify" in table:
        urls = table["notify"]
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise ConfigError(path, f"{prefix}.notify", "must be a list of notification URLs")
        for index, url in enumerate(urls):
            if not _is_notify_url(url):
                # Never echo the value: a notification URL carries its secret.
                raise ConfigError(
                    path,
                    f"{prefix}.notify[{index}]",
                    "must be an Apprise URL (scheme://..., e.g. slack://, ntfys://, jsons://) "
                    "or env:NAME",
                )
        out["notify"] = tuple(urls)
    return out


def parse_listen(value: str) -> tuple[str, int] | None:
    """HOST:PORT (an IPv6 host in brackets), or None."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        return None
    return host.strip("[]"), int(port)


def _parse_console(path: Path, table: Any) -> ConsoleSettings:
    if not isinstance(table, dict):
        raise ConfigError(path, "console", "must be a table ([console])")
    unknown = set(table) - {"theme"}
    if unknown:
        raise ConfigError(path, f"console.{sorted(unknown)[0]}", "unknown key (expected theme)")
    theme = table.get("theme", "dark")
    if theme not in THEMES:
        raise ConfigError(path, "console.theme", f"must be one of {', '.join(THEMES)}")
    return ConsoleSettings(theme=theme)


def _parse_profile(path: Path, name: str, table: Any) -> Profile:
    prefix = f"profiles.{name}"
    if not isinstance(table, dict):
        raise ConfigError(path, prefix, "must be a table")
    if name == SANDBOX_PROFILE:
        raise ConfigError(path, prefix, "'sandbox' is built in and cannot be redefined")
    if not _PROFILE_NAME.fullmatch(name):
        raise ConfigError(path, prefix, "profile names use letters, digits, '-' and '_'")
    if "notify_webhook" in table:
        raise ConfigError(
            path,
            f"{prefix}.notify_webhook",
            "was replaced by notify = [URL, ...] (Apprise URLs: slack://, jsons://, ...)",
        )
    for key in table:
        if key not in _PROFILE_KEYS:
            raise ConfigError(
                path, f"{prefix}.{key}", f"unknown key (known: {', '.join(sorted(_PROFILE_KEYS))})"
            )
    keep = table.get("keep_releases", 5)
    if not isinstance(keep, int) or isinstance(keep, bool) or not 1 <= keep <= 100:
        raise ConfigError(
            path, f"{prefix}.keep_releases", f"must be a whole number from 1 to 100 (got {keep!r})"
        )
    pushes = _push_settings(path, prefix, table)
    table = {k: v for k, v in table.items() if k not in ("webhook_url", "notify")}
    for key, value in table.items():
        if key == "keep_releases":
            continue
        if not isinstance(value, str):
            raise ConfigError(
                path, f"{prefix}.{key}", f"must be a string (got {type(value).__name__})"
            )
        if any(unicodedata.category(ch) == "Cc" for ch in value):
            raise ConfigError(
                path,
                f"{prefix}.{key}",
                f"must not contain newlines or other control characters (got {value!r})",
            )

    def check(key: str, ok: bool, rule: str) -> None:
        if key in table and not ok:
            raise ConfigError(path, f"{prefix}.{key}", f"{rule} (got {table[key]!r})")

    check(
        "region",
        bool(_REGION.fullmatch(table.get("region", ""))),
        "must be an AWS region such as eu-west-1",
    )
    check(
        "instance_type",
        bool(_INSTANCE_TYPE.fullmatch(table.get("instance_type", ""))),
        "must be an EC2 instance type such as t3.small",
    )
    check(
        "hosted_zone_id",
        bool(_ZONE_ID.fullmatch(table.get("hosted_zone_id", ""))),
        "must be a Route53 hosted zone id such as Z0123456789ABCDEFGHIJ",
    )
    check(
        "ami_parameter",
        table.get("ami_parameter", "").startswith("/aws/service/"),
        "must be an SSM public parameter name starting with /aws/service/",
    )
    check(
        "key_pair",
        bool(_KEY_NAME.fullmatch(table.get("key_pair", ""))),
        "must be an EC2 key pair name (1-255 letters, digits, spaces or ._:/@-)",
    )
    check(
        "operator_cidr",
        _is_cidr(table.get("operator_cidr", "")),
        "must be a CIDR block such as 203.0.113.7/32",
    )
    check(
        "acme",
        table.get("acme") in ("production", "staging"),
        'must be "production" or "staging"',
    )
    check(
        "subnet_id",
        bool(re.fullmatch(r"subnet-[0-9a-f]{8,17}", table.get("subnet_id", ""))),
        "must be a subnet id such as subnet-0123456789abcdef0",
    )
    check(
        "checkip_url",
        table.get("checkip_url", "").startswith(("http://", "https://")),
        "must be an http:// or https:// URL that answers with your public IPv4 address",
    )
    check(
        "endpoint_url",
        table.get("endpoint_url", "").startswith(("http://", "https://")),
        "must be an http:// or https:// URL",
    )
    if "base_domain" not in table:
        raise ConfigError(
            path, f"{prefix}.base_domain", "is required (the domain apps are served under)"
        )
    check(
        "base_domain",
        is_domain(table["base_domain"]),
        "must be a DNS name such as apps.example.com (lower case letters, digits, '-' and dots)",
    )
    return Profile(name=name, **table, **pushes)


def is_domain(value: str) -> bool:
    labels = value.split(".")
    return (
        len(value) <= 253 and len(labels) >= 2 and all(_LABEL.fullmatch(label) for label in labels)
    )


def is_dns_label(value: str) -> bool:
    return bool(_LABEL.fullmatch(value))


def _is_cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        return False
    return True


def _is_notify_url(value: str) -> bool:
    if value.startswith("env:"):
        return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value[4:]))
    return bool(re.fullmatch(r"[a-z][a-z0-9+.-]*://\S+", value))


def aws_credentials_configured(environ: dict[str, str] | None = None) -> bool:
    """A cheap check (no boto3 import) for whether any AWS credentials are set up here."""
    env = os.environ if environ is None else environ
    if (
        env.get("AWS_ACCESS_KEY_ID")
        or env.get("AWS_PROFILE")
        or env.get("AWS_WEB_IDENTITY_TOKEN_FILE")
    ):
        return True
    if env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") or env.get(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI"
    ):
        return True
    home = Path(env.get("HOME", str(Path.home())))
    files = [env.get("AWS_SHARED_CREDENTIALS_FILE"), env.get("AWS_CONFIG_FILE")]
    candidates = [Path(f) for f in files if f] or [
        home / ".aws" / "credentials",
        home / ".aws" / "config",
    ]
    return any(p.is_file() and p.stat().st_size > 0 for p in candidates)


def choose_profile(
    config: Config,
    *,
    requested: str | None,
    sandbox: bool,
    environ: dict[str, str] | None = None,
) -> Profile:
    """Pick the profile: --sandbox, --profile, TOAST_PROFILE, default_profile, the only one,
    or the sandbox when nothing is configured and no AWS credentials exist."""
    env = os.environ if environ is None else environ
    if sandbox:
        return config.profile(SANDBOX_PROFILE)
    name = requested or env.get("TOAST_PROFILE") or config.default_profile
    if name:
        return config.profile(name)
    if len(config.profiles) == 1:
        return next(iter(config.profiles.values()))
    if not config.profiles and not aws_credentials_configured(dict(env)):
        return config.profile(SANDBOX_PROFILE)
    if not config.profiles:
        raise ConfigError(
            config.path,
            None,
            "AWS credentials are set up but no profile is configured: add a [profiles.NAME] "
            "table with base_domain, or pass --sandbox",
        )
    raise ConfigError(
        config.path,
        "default_profile",
        f"several profiles ({', '.join(sorted(config.profiles))}): "
        "pass --profile NAME or set default_profile",
    )
