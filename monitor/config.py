"""Load the YAML configuration into validated, frozen models.

``load(path)`` reads the file, substitutes ``${ENV_VAR}`` (and ``${ENV_VAR:-default}``) in string
values, validates everything, and returns a :class:`Config`. Every problem raises
:class:`~monitor.errors.ConfigError` whose message names the file, the entry, the key and what is
allowed, one problem per line, e.g.::

    config/monitor.yaml: sources[3] (id: fr-mali): unknown key 'intervall'; allowed: countries, ...

Secrets: error messages quote values as written in the file (before substitution), so a secret
taken from the environment never appears in them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from datetime import time as dtime
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import pycountry
import soupsieve
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.errors import ConfigError
from monitor.models import ChangeClass
from monitor.sources import REGISTRY

DEFAULT_PATH = Path("config/monitor.yaml")
ENV_VAR = "MONITOR_CONFIG"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}
# libyaml's parser with the safe constructors: the same documents, read about ten times faster
# (a configuration of 10,000 sources loads in well under a second).
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


# Beyond these, a value is a mistake (and would overflow the date arithmetic it feeds).
_MAX_DURATION = timedelta(days=3650)
_MAX_SIZE = 1_000_000_000_000


def parse_duration(value: object, *, allow_zero: bool = False) -> timedelta:
    """``15m``, ``30s``, ``1h``, ``2d``, ``500ms`` or a number of seconds -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a duration such as 30s, 15m, 1h; got {value!r}")
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"expected a duration such as 30s, 15m, 1h; got {value!r}")
    seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(f"a duration must be {'zero or more' if allow_zero else 'positive'}; got {value!r}")
    if seconds > _MAX_DURATION.total_seconds():
        raise ValueError(f"a duration must be at most {_MAX_DURATION.days} days; got {value!r}")
    return timedelta(seconds=seconds)


def parse_size(value: object) -> int:
    """``5MB``, ``512KiB`` or a number of bytes -> int bytes."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a size such as 5MB or 512KB; got {value!r}")
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"expected a size such as 5MB or 512KB; got {value!r}")
    amount = float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
    if amount > _MAX_SIZE:
        raise ValueError(f"a size must be at most {_MAX_SIZE // 1_000_000_000} GB; got {value!r}")
    size = int(amount)
    if size <= 0:
        raise ValueError(f"a size must be positive; got {value!r}")
    return size


def _country_code(value: object) -> str:
    if isinstance(value, bool):
        raise ValueError("YAML reads NO/YES/ON/OFF as booleans: quote country codes, e.g. 'NO' for Norway")
    if not isinstance(value, str) or pycountry.countries.get(alpha_2=value.upper()) is None:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code (e.g. ML, BF, NE)")
    return value.upper()


def _http_url(value: object) -> str:
    from urllib.parse import urlsplit

    if not isinstance(value, str):
        raise ValueError(f"expected an http(s) URL; got {value!r}")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL with a host")
    return value.strip()


def _duration_or_zero(value: object) -> timedelta:
    return parse_duration(value, allow_zero=True)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
DurationOrZero = Annotated[timedelta, BeforeValidator(_duration_or_zero)]
Size = Annotated[int, BeforeValidator(parse_size)]
Country = Annotated[str, BeforeValidator(_country_code)]
HttpUrl = Annotated[str, BeforeValidator(_http_url)]
SourceId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class Defaults(_Strict):
    """Settings every source inherits unless it sets its own.

    ``interval`` unset: each kind's own (15 minutes for ministries, 60 for carriers).
    ``private_addresses: refuse`` refuses every fetch that would connect to a private, loopback,
    link-local or otherwise non-public address (see :mod:`monitor.netguard`): for deployments
    whose configurations come from people who must not reach the monitor's own network."""

    interval: Duration | None = None
    timeout: Duration = timedelta(seconds=30)
    user_agent: str | None = None
    max_body: Size = 5_000_000
    concurrency: int = Field(16, ge=1, le=1000)
    per_host: int = Field(2, ge=1, le=100)
    host_spacing: DurationOrZero = timedelta(seconds=1)
    max_backoff: Duration = timedelta(hours=6)
    failures_before_broken: int = Field(3, ge=1, le=1000)
    browser_path: str | None = None
    private_addresses: Literal["allow", "refuse"] = "allow"


def _bind_address(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8765; got {value!r}")
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8765; got {value!r}")
    return f"{host}:{int(port)}"


BindAddress = Annotated[str, BeforeValidator(_bind_address)]


class Service(_Strict):
    """How ``monitor run`` behaves as a long-running service.

    A worker holds a source it checks for ``lease`` and renews the lease every ``heartbeat``
    while the check runs; a worker that dies leaves its sources to the others when the lease
    ends. On SIGTERM, checks in flight and the delivery of due alerts get ``shutdown_grace``
    to finish. ``http``: where
    ``/healthz`` and ``/metrics`` are served (``--http`` overrides it)."""

    lease: Duration = timedelta(seconds=60)
    heartbeat: Duration = timedelta(seconds=10)
    shutdown_grace: Duration = timedelta(seconds=5)
    http: BindAddress | None = None

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> Service:
        if self.heartbeat * 2 > self.lease:
            raise ValueError("heartbeat must be at most half the lease, so a live worker keeps its sources")
        return self


class SourceConfig(_Strict):
    """One watched source. ``options`` are validated by the source kind's own schema."""

    id: SourceId
    kind: str
    url: HttpUrl
    countries: tuple[Country, ...] = ()
    interval: Duration | None = None
    fetcher: Literal["http", "browser"] = "http"
    wait_for: str | None = None
    publisher: str | None = Field(None, min_length=1, max_length=80)
    options: dict[str, Any] = Field(default_factory=dict)

    @property
    def publisher_name(self) -> str:
        """Who publishes the source, as alerts name it: ``publisher``, else the kind's, else the id."""
        return self.publisher or REGISTRY[self.kind].publisher or self.id

    @field_validator("wait_for")
    @classmethod
    def _css(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                soupsieve.compile(value)
            except soupsieve.SelectorSyntaxError as exc:
                raise ValueError(f"invalid CSS selector {value!r}: {str(exc).splitlines()[0]}") from None
        return value

    @model_validator(mode="after")
    def _wait_for_needs_browser(self) -> SourceConfig:
        if self.wait_for is not None and self.fetcher != "browser":
            raise ValueError("wait_for applies only with fetcher: browser")
        return self

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in REGISTRY:
            raise ValueError(f"unknown kind {value!r}; allowed: {', '.join(sorted(REGISTRY))}")
        return value


def _time_of_day(value: object) -> dtime:
    if isinstance(value, dtime):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1440:
        return dtime(value // 60, value % 60)  # YAML 1.1 reads an unquoted 07:30 as 450 minutes
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", value) if isinstance(value, str) else None
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f"expected a UTC time of day such as 07:00; got {value!r}")
    return dtime(int(match.group(1)), int(match.group(2)))


TimeOfDay = Annotated[dtime, BeforeValidator(_time_of_day)]


class AlertChannel(_Strict):
    """One apprise destination and what it receives. ``url`` may hold ``${ENV_VAR}`` references.

    Empty ``countries``/``sources``/``kinds`` mean no restriction. ``digest`` channels get one
    message per hour or day (at ``digest_at`` UTC) instead of one per change; critical changes
    still go out at once.
    """

    name: SourceId
    url: str
    min_class: Literal["noise", "update", "heightened", "severe", "critical"] = "heightened"
    countries: tuple[Country, ...] = ()
    sources: tuple[SourceId, ...] = ()
    kinds: tuple[str, ...] = ()
    digest: Literal["hourly", "daily"] | None = None
    digest_at: TimeOfDay = dtime(7, 0)
    max_attempts: int = Field(12, ge=1, le=1000)
    report_failures: bool = False
    health: bool = True  # tell this channel when one of its sources stops or starts working again

    @property
    def threshold(self) -> ChangeClass:
        return ChangeClass(self.min_class)

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if unknown := [kind for kind in value if kind not in REGISTRY]:
            raise ValueError(f"unknown kind {unknown[0]!r}; allowed: {', '.join(sorted(REGISTRY))}")
        return value


class Config(_Strict):
    """The whole configuration; ``path`` is where it was read from (for messages)."""

    database: str = "sqlite:///data/monitor.db"
    defaults: Defaults = Defaults()
    service: Service = Service()
    countries: tuple[Country, ...] = ()
    sources: tuple[SourceConfig, ...] = ()
    alerts: tuple[AlertChannel, ...] = ()
    rules: tuple[str, ...] = ()
    path: Path = Path("<memory>")

    def rule_paths(self) -> tuple[Path, ...]:
        """The extra phrase-rule files, relative paths taken from the configuration's folder."""
        return tuple(self.path.parent / rule for rule in self.rules)

    def source(self, source_id: str) -> SourceConfig:
        for source in self.sources:
            if source.id == source_id:
                return source
        known = ", ".join(s.id for s in self.sources) or "none"
        raise ConfigError(f"{self.path}: no source with id {source_id!r}; configured: {known}")

    def publisher_of(self, source_id: str, kind: str) -> str:
        """How messages and reports name a source: its ``publisher`` setting, else its kind's
        publisher, else its id (also for a source no longer configured)."""
        for source in self.sources:
            if source.id == source_id:
                return source.publisher_name
        publisher = REGISTRY[kind].publisher if kind in REGISTRY else ""
        return publisher or source_id

    def interval_of(self, source: SourceConfig) -> timedelta:
        """The source's own interval, else ``defaults.interval``, else its kind's default."""
        return source.interval or self.defaults.interval or REGISTRY[source.kind].default_interval


def default_path() -> Path:
    """``$MONITOR_CONFIG`` when set, else ``config/monitor.yaml`` in the working directory."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_PATH)


def load(path: Path | None = None, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read, substitute and validate a configuration file. Raises ConfigError."""
    path = path or default_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: configuration file not found (pass --config FILE or set {ENV_VAR})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc}") from None
    return loads(text, path=path, environ=os.environ if environ is None else environ)


def loads(text: str, *, path: Path, environ: Mapping[str, str]) -> Config:
    """Validate configuration text; ``path`` is only used in messages."""
    try:
        raw = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    except ValueError as exc:  # a value YAML cannot build, such as the date 2025-13-45
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys (database, sources, ...)")
    unset: list[tuple[tuple[Any, ...], str]] = []
    try:
        data = _substitute(raw, (), environ, unset)
    except RecursionError:
        raise ConfigError(f"{path}: the configuration is nested too deeply") from None
    problems = [f"{_where(loc, raw)}environment variable {name} is not set" for loc, name in unset]
    if not problems:
        problems = _validate(data, raw, path)
    if problems:
        raise ConfigError("\n".join(f"{path}: {problem}" for problem in problems))
    return Config.model_validate({**data, "path": path})


def _substitute(
    value: Any, loc: tuple[Any, ...], environ: Mapping[str, str], unset: list[tuple[tuple[Any, ...], str]]
) -> Any:
    """``value`` with ``${NAME}`` references replaced; each unset one is added to ``unset``."""
    if isinstance(value, dict):
        return {k: _substitute(v, (*loc, k), environ, unset) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, (*loc, i), environ, unset) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        unset.append((loc, name))
        return ""

    return _ENV_REF.sub(replace, value)


def _validate(data: dict[str, Any], raw: dict[str, Any], path: Path) -> list[str]:
    if "path" in data:
        return [_where(("path",), raw) + "unknown key 'path'; " + _allowed(Config)]
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        return [_describe(error, raw) for error in exc.errors()]
    problems = (
        _check_unique(config, raw)
        + _check_options(config, raw)
        + _check_alert_urls(config, raw)
        + _check_alert_sources(config, raw)
        + _check_source_addresses(config, raw)
    )
    return problems or _check_rules(config, path)


def _check_rules(config: Config, path: Path) -> list[str]:
    if not config.rules:
        return []  # the built-in rules alone: checked by the monitor's own tests, loaded when used
    from monitor.rules import RulesError, load_rules

    try:
        load_rules(tuple(path.parent / rule for rule in config.rules))
    except RulesError as exc:
        return [f"rules: {exc}"]
    return []


def _check_unique(config: Config, raw: dict[str, Any]) -> list[str]:
    problems = []
    for section, attr in (("sources", "id"), ("alerts", "name")):
        seen: set[str] = set()
        for index, entry in enumerate(getattr(config, section)):
            value = getattr(entry, attr)
            if value in seen:
                problems.append(f"{_where((section, index), raw)}duplicate {attr} {value!r}")
            seen.add(value)
    return problems


def _check_options(config: Config, raw: dict[str, Any]) -> list[str]:
    problems = []
    for index, source in enumerate(config.sources):
        schema = REGISTRY[source.kind].Options
        try:
            schema.model_validate(source.options)
        except ValidationError as exc:
            for error in exc.errors():
                loc = ("sources", index, "options", *error["loc"])
                problems.append(_describe({**error, "loc": loc}, raw, model=schema))
    return problems


def _check_alert_urls(config: Config, raw: dict[str, Any]) -> list[str]:
    import apprise

    from monitor.alerts import applog

    applog.isolate()  # apprise logs the URLs it cannot parse, secrets half-masked at best
    problems = []
    for index, channel in enumerate(config.alerts):
        if apprise.Apprise.instantiate(channel.url) is None:
            # Only the scheme is quoted: a URL apprise cannot parse cannot be masked either.
            scheme = channel.url.partition("://")[0] if "://" in channel.url else ""
            shown = f"a {scheme}:// URL" if scheme else "the URL"
            problems.append(
                f"{_where(('alerts', index), raw)}url: apprise cannot use {shown} (unknown service or a "
                "missing or malformed part; see https://github.com/caronc/apprise/wiki for each service)"
            )
    return problems


def _check_alert_sources(config: Config, raw: dict[str, Any]) -> list[str]:
    known = {source.id for source in config.sources}
    return [
        f"{_where(('alerts', index), raw)}sources: unknown source {source_id!r}; "
        f"configured: {', '.join(sorted(known)) or 'none'}"
        for index, channel in enumerate(config.alerts)
        for source_id in channel.sources
        if source_id not in known
    ]


def _check_source_addresses(config: Config, raw: dict[str, Any]) -> list[str]:
    """With ``private_addresses: refuse``, a source URL that names a forbidden address literally
    is refused now; names are checked when they are connected to."""
    if config.defaults.private_addresses != "refuse":
        return []
    from urllib.parse import urlsplit

    from monitor.netguard import forbidden, literal_address, refusal

    problems = []
    for index, source in enumerate(config.sources):
        host = urlsplit(source.url).hostname or ""
        address = literal_address(host)
        kind = forbidden(address) if address is not None else None
        if address is not None and kind is not None:
            problems.append(f"{_where(('sources', index, 'url'), raw)}{refusal(host, address, kind)}")
    return problems


_MESSAGES = {
    "tuple_type": "expected a list",
    "list_type": "expected a list",
    "dict_type": "expected a mapping of keys",
    "model_type": "expected a mapping of keys",
    "model_attributes_type": "expected a mapping of keys",
    "string_type": "expected a string",
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
}


def _describe(error: Mapping[str, Any], raw: dict[str, Any], model: type[BaseModel] | None = None) -> str:
    """One line for one pydantic error: where, which key, what is wrong, what was written."""
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{_where(loc[:-1], raw)}unknown key {loc[-1]!r}; {_allowed(model or _model_at(loc[:-1]))}"
    if kind == "missing":
        return f"{_where(loc[:-1], raw)}missing key {loc[-1]!r}"
    message = _MESSAGES.get(kind) or str(error["msg"]).removeprefix("Value error, ")
    written = _MISSING if _secret(loc) else _lookup(raw, loc)
    shown = "" if written is _MISSING or repr(written) in message else f" (got {written!r})"
    return f"{_where(loc, raw)}{message}{shown}"


_MISSING = object()


def _secret(loc: Sequence[Any]) -> bool:
    """Whether ``loc`` is in an alert channel's URL, whose value is never quoted."""
    return len(loc) >= 3 and loc[0] == "alerts" and loc[2] == "url"


def _lookup(raw: Any, loc: Sequence[Any]) -> Any:
    for part in loc:
        try:
            raw = raw[part]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return raw


def _where(loc: Sequence[Any], raw: dict[str, Any]) -> str:
    """``sources[3] (id: fr-mali): `` for a location inside a list entry, ``defaults: `` etc."""
    parts: list[str] = []
    for index, part in enumerate(loc):
        if isinstance(part, int) and parts:
            parts[-1] += f"[{part}]"
            entry = _lookup(raw, loc[: index + 1])
            label = next((entry[k] for k in ("id", "name") if isinstance(entry, dict) and k in entry), None)
            if label is not None:
                parts[-1] += f" ({'id' if 'id' in entry else 'name'}: {label})"
        else:
            parts.append(str(part))
    return (": ".join(parts) + ": ") if parts else ""


def _model_at(loc: Sequence[Any]) -> type[BaseModel]:
    names = [part for part in loc if isinstance(part, str)]
    models: dict[str, type[BaseModel]] = {
        "defaults": Defaults,
        "sources": SourceConfig,
        "alerts": AlertChannel,
        "service": Service,
    }
    return models.get(names[0], Config) if len(names) == 1 else Config


def _allowed(model: type[BaseModel]) -> str:
    return "allowed: " + ", ".join(sorted(name for name in model.model_fields if name != "path"))
