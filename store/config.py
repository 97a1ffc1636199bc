"""The config file (TOML) and environment settings, validated by pydantic.

Secrets never live in the file: a provider names the environment variable that holds
its URL, token or password (``url_env``, ``secret_env``, ``password_env``, ``routing_key_env``).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from store.errors import UserError
from store.settings import EnvSettings as EnvSettings
from store.settings import data_dir as data_dir
from store.settings import default_config_path
from store.text import control_character

PUBLIC_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
ROLE_NAMES = ("operator", "release_manager", "auditor", "executive")
PROVIDER_KINDS = ("outbox", "webhook", "slack", "email", "pagerduty")


Audience = Literal["operations", "executive", "audit"]
WITNESS_KINDS = ("outbox", "webhook")


PROVIDER_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: object) -> object:
        # Config strings end up in headers, file names and terminals.
        for text in _strings(value):
            bad = control_character(text)
            if bad is not None:
                raise ValueError(f"contains a control character ({bad})")
        return value


class _ProviderBase(_Strict):
    enabled: bool = True
    timeout_s: float = Field(default=5.0, gt=0, le=120)
    audience: list[Audience] = Field(default_factory=lambda: list[Audience](["operations"]))
    # Where a suppressed escalation pair of this provider (max attempts, a permanent error,
    # an open circuit) is sent once instead (issue 13 step 2); default: [routing] fallback.
    failover: str | None = None


class OutboxProvider(_ProviderBase):
    kind: Literal["outbox"]
    path: str | None = None  # relative paths resolve against the config file's folder


class _HttpProvider(_ProviderBase):
    # The Idempotency-Key header: "quoted" is a structured-field string, as the IETF
    # httpapi-idempotency-key draft defines it; "bare" is the old unquoted value.
    idempotency_key_header: Literal["quoted", "bare"] = "quoted"


class WebhookProvider(_HttpProvider):
    kind: Literal["webhook"]
    url_env: str
    secret_env: str | None = None  # HMAC-SHA256 signing key, optional
    # "cavra": X-Cavra-Signature over the body (with secret_env); "standard-webhooks":
    # webhook-id / webhook-timestamp / webhook-signature, the key a whsec_ secret.
    signing: Literal["cavra", "standard-webhooks"] = "cavra"

    @model_validator(mode="after")
    def _standard_webhooks_needs_a_secret(self) -> WebhookProvider:
        if self.signing == "standard-webhooks" and not self.secret_env:
            raise ValueError('signing = "standard-webhooks" needs secret_env (the variable '
                             "holding the whsec_ secret)")
        return self


class SlackProvider(_HttpProvider):
    kind: Literal["slack"]
    url_env: str


class EmailProvider(_ProviderBase):
    kind: Literal["email"]
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    username: str | None = None
    password_env: str | None = None
    sender: str
    to: list[str] = Field(min_length=1)


class PagerDutyProvider(_HttpProvider):
    kind: Literal["pagerduty"]
    routing_key_env: str
    events_url: str = PUBLIC_EVENTS_URL


ProviderConfig = Annotated[
    OutboxProvider | WebhookProvider | SlackProvider | EmailProvider | PagerDutyProvider,
    Field(discriminator="kind"),
]


SEVERITIES = ("critical", "warning")
MAX_LEVELS = 10


class EscalationLevel(_Strict):
    """One level of an escalation policy (as PagerDuty's): who is sent the plan, and how long
    they have to acknowledge it before the next level is (none: never escalates further)."""

    providers: list[str] = Field(min_length=1)
    ack_timeout_minutes: int | None = Field(default=None, ge=1, le=10_080)


class EscalationLevels(_Strict):
    """``[[routing.levels.critical]]`` / ``[[routing.levels.warning]]``: level 1 first."""

    critical: list[EscalationLevel] | None = Field(default=None, min_length=1,
                                                   max_length=MAX_LEVELS)
    warning: list[EscalationLevel] | None = Field(default=None, min_length=1,
                                                  max_length=MAX_LEVELS)


class RoutingConfig(_Strict):
    critical: list[str] = Field(default_factory=list)
    warning: list[str] = Field(default_factory=list)
    fallback: str = "outbox"
    levels: EscalationLevels = Field(default_factory=EscalationLevels)

    @model_validator(mode="after")
    def _one_form_per_severity(self) -> RoutingConfig:
        for severity in SEVERITIES:
            if severity in self.model_fields_set and getattr(self.levels, severity) is not None:
                raise ValueError(f"{severity} is given both as a list ({severity} = [...]) and "
                                 f"as levels ([[routing.levels.{severity}]]): use one form")
        return self

    def levels_for(self, severity: str) -> list[EscalationLevel]:
        """The severity's escalation levels, level 1 first. The flat form is one level with
        no acknowledgement timeout (it never escalates further)."""
        key = "critical" if severity == "critical" else "warning"
        levels = getattr(self.levels, key)
        if levels:
            return list(levels)
        return [EscalationLevel.model_construct(providers=list(getattr(self, key)),
                                                ack_timeout_minutes=None)]


class RetryPolicy(_Strict):
    max_attempts: int = Field(default=3, ge=1, le=100)
    base_delay_minutes: float = Field(default=15, ge=0)
    multiplier: float = Field(default=2.0, ge=1.0, le=10.0)
    allow_immediate: bool = False
    max_deliveries: int = Field(default=5, ge=1, le=100)
    # Live sends in flight at once in one worker run (the dry run stays sequential).
    concurrency: int = Field(default=8, ge=1, le=64)
    # The live run's heartbeat lease: renewed every third of this; a killed run's lease
    # expires within it.
    lease_ttl_s: int = Field(default=30, ge=5, le=600)


class RolesConfig(_Strict):
    release_manager: list[str] = Field(default_factory=list)
    operator: list[str] = Field(default_factory=list)
    auditor: list[str] = Field(default_factory=list)
    executive: list[str] = Field(default_factory=list)
    separate_duties: bool = False


class EscalationConfig(_Strict):
    slo_minutes: int = Field(default=240, ge=1)
    lookback_hours: int = Field(default=24, ge=1)


class HealthConfig(_Strict):
    """Thresholds of `cavra health` (SPEC §5.7)."""

    lookback_hours: int = Field(default=24, ge=1, le=24 * 90)
    # How often the retry worker should run; default: the shortest enabled retry-worker
    # interval schedule, else 24 h. "Missed" is twice this.
    expected_worker_interval_minutes: int | None = Field(default=None, ge=1, le=10_080)
    # Failed pairs with no retry plan for this long: stale (default: twice the interval).
    stale_plan_minutes: int | None = Field(default=None, ge=1, le=20_160)
    # The scheduler leader checks health this often and tells the operations providers when
    # the loop itself fails (critical alerts, a held live lock) and when it clears; 0: never.
    # Default: every 5 minutes once an operations provider other than the outbox exists.
    self_alert_minutes: int | None = Field(default=None, ge=0, le=1440)


class CircuitConfig(_Strict):
    """Per-provider circuit breaker: open after N consecutive failures, for a cool-down."""

    failure_threshold: int = Field(default=5, ge=1, le=1000)
    cooldown_s: int = Field(default=300, ge=1, le=86_400)


class IdentityConfig(_Strict):
    """Where the actor's name comes from: the OS user of the effective uid, or (PostgreSQL)
    the role the database authenticated (``session_user``)."""

    source: Literal["os", "database"] = "os"


class AuditConfig(_Strict):
    """Signed checkpoints of the chain head, sent to witnesses (``audience = ["audit"]``), and
    optional SSH signatures on every event."""

    checkpoint_minutes: int = Field(default=15, ge=1, le=10_080)
    # How checkpoints are signed: HMAC-SHA256 with the key in ``key_env``, or the acting
    # user's SSH key through ssh-agent. Default: hmac when key_env is set, else ssh.
    checkpoint_signing: Literal["hmac", "ssh"] | None = None
    key_env: str | None = Field(default=None, min_length=1, max_length=128)
    ssh_key: str | None = None  # public key (file or key line) of the agent key to use
    allowed_signers: str | None = None  # relative paths resolve against the config file
    signing: Literal["none", "ssh"] = "none"  # "ssh": every audit event is signed

    @property
    def checkpoint_method(self) -> str:
        return self.checkpoint_signing or ("hmac" if self.key_env else "ssh")

    @model_validator(mode="after")
    def _hmac_needs_a_key(self) -> AuditConfig:
        if self.checkpoint_signing == "hmac" and not self.key_env:
            raise ValueError("checkpoint_signing = \"hmac\" needs key_env")
        return self


class CavraConfig(_Strict):
    providers: dict[str, ProviderConfig] = Field(default_factory=dict, validate_default=True)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    roles: RolesConfig | None = None
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    circuit: CircuitConfig = Field(default_factory=CircuitConfig)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    # The console's key bindings by action ID (`python -m cavra_tui.actions` lists them);
    # the console checks the IDs and keys when it starts.
    keys: dict[str, str] = Field(default_factory=dict)
    base_dir: str | None = Field(default=None, exclude=True)  # folder of the config file

    def self_alert_interval(self) -> int:
        """Minutes between the leader's self-alert checks; 0: none."""
        if self.health.self_alert_minutes is not None:
            return self.health.self_alert_minutes
        told = [name for name, p in self.providers.items()
                if p.enabled and "operations" in p.audience and p.kind != "outbox"]
        return 5 if told else 0

    @field_validator("providers")
    @classmethod
    def _outbox_always_exists(
            cls, providers: dict[str, ProviderConfig]) -> dict[str, ProviderConfig]:
        for name in providers:
            if not PROVIDER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a provider name: 1–63 lowercase letters, "
                                 "digits, '.', '_' or '-', starting with a letter or digit")
        merged = dict(providers)
        existing = merged.get("outbox")
        if existing is not None and existing.kind != "outbox":
            raise ValueError("the provider named 'outbox' must be of kind outbox")
        # The embedded default is a local file: a governed channel for both audiences.
        merged.setdefault("outbox", OutboxProvider(kind="outbox",
                                                   audience=["operations", "executive"]))
        return merged

    @model_validator(mode="after")
    def _routes_name_known_providers(self) -> CavraConfig:
        for severity in SEVERITIES:
            for name in getattr(self.routing, severity):
                if name not in self.providers:
                    raise ValueError(f"routing.{severity}: unknown provider {name!r}")
            for number, level in enumerate(getattr(self.routing.levels, severity) or [], 1):
                for name in level.providers:
                    if name not in self.providers:
                        raise ValueError(f"routing.levels.{severity} (level {number}): "
                                         f"unknown provider {name!r}")
        if self.routing.fallback not in self.providers:
            raise ValueError(f"routing.fallback: unknown provider {self.routing.fallback!r}")
        for name, provider in self.providers.items():
            if provider.failover is not None and provider.failover not in self.providers:
                raise ValueError(f"providers.{name}.failover: unknown provider "
                                 f"{provider.failover!r}")
            if provider.failover == name:
                raise ValueError(f"providers.{name}.failover: a provider cannot fail over to "
                                 "itself")
            if "audit" in provider.audience and provider.kind not in WITNESS_KINDS:
                raise ValueError(f"providers.{name}.audience: an audit witness must be of kind "
                                 f"{' or '.join(WITNESS_KINDS)}")
        return self

    def provider(self, name: str) -> ProviderConfig | None:
        return self.providers.get(name)

    def failover_for(self, name: str) -> str | None:
        """Where a suppressed pair of provider ``name`` fails over: its ``failover``, else
        ``[routing] fallback``; None when that is the provider itself (the fallback's own
        pairs have nowhere else to go)."""
        provider = self.providers.get(name)
        target = (provider.failover if provider is not None else None) or self.routing.fallback
        return None if target == name else target

    def witnesses(self) -> list[str]:
        """Providers that receive signed checkpoints of the audit chain."""
        return [name for name, p in self.providers.items()
                if "audit" in p.audience and p.enabled]

    def resolve_path(self, value: str) -> Path:
        """A path from the config file: ``~`` expanded, relative to the file's folder."""
        path = Path(value).expanduser()
        return path if path.is_absolute() or self.base_dir is None else Path(self.base_dir) / path

    def is_executive(self, name: str) -> bool:
        provider = self.providers.get(name)
        return provider is not None and "executive" in provider.audience


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    loc = [str(part) for part in first["loc"]]
    # A discriminated union adds the kind as a path step: providers.NAME.webhook.url_env.
    if len(loc) >= 3 and loc[0] == "providers" and loc[2] in PROVIDER_KINDS:
        del loc[2]
    message = ("unknown key" if first["type"] == "extra_forbidden"
               else str(first["msg"]).removeprefix("Value error, "))
    where = ".".join(loc)
    return f"{where}: {message}" if where else message


def load_config(path: str | os.PathLike[str] | None) -> CavraConfig:
    """Load and validate the config; no file at the default location means defaults."""
    explicit = path is not None
    config_path = Path(path) if path is not None else default_config_path()
    if not config_path.exists():
        if explicit:
            raise UserError(f"config: {config_path}: no such file")
        return CavraConfig()
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"config: {config_path}: unreadable ({exc.__class__.__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config: {config_path}: invalid TOML ({exc})") from None
    try:
        config = CavraConfig.model_validate(raw)
    except ValidationError as exc:
        raise UserError(f"config: {config_path}: {_describe(exc)}") from None
    return config.model_copy(update={"base_dir": str(config_path.resolve().parent)})
