"""Settings: command-line option > environment variable > TOML config file > default."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from commcare.errors import ConfigError

KEYS = ("database", "timezone", "lang", "operator", "community", "retention_days", "db_timeout", "audit_key")
ENV = {
    "database": "COMMCARE_DB",
    "config": "COMMCARE_CONFIG",
    "operator": "COMMCARE_USER",
    "lang": "COMMCARE_LANG",
    "community": "COMMCARE_COMMUNITY",
    "timezone": "COMMCARE_TZ",
    "audit_key": "COMMCARE_AUDIT_KEY",
}
DEFAULT_TZ = "Asia/Shanghai"
DEFAULT_COMMUNITY = "default"
DEFAULT_DB_TIMEOUT = 30.0  # seconds a PostgreSQL server may leave a command without an answer

# What each key of the config file must hold: a kind ("text", "whole number", "number",
# "table") and, for numbers, the range that makes sense. A key of the wrong type or out of
# range is refused (exit 2) naming it, before anything else runs; keys not listed here are
# left to whoever reads them.
TEXT = ("text", None)
SCHEMA = {
    "database": TEXT,
    "timezone": TEXT,
    "lang": TEXT,
    "operator": TEXT,
    "community": TEXT,
    "audit_key": TEXT,
    "retention_days": ("whole number", (1, 36_500)),
    "unreached_days": ("whole number", (1, 3_650)),
    "db_timeout": ("number", (1, 3_600)),
    "fever_at": ("number", (34, 43)),
    "tags": ("table", None),
}
TAG_SCHEMA = {"zh": "text", "en": "text", "aliases": "list of text", "daily_call": "true or false"}


def user_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("commcare", appauthor=False))


def default_config_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("commcare", appauthor=False)) / "commcare.toml"


def audit_anchor_dir() -> Path:
    """Where the audit trail's anchors live (one file per database)."""
    return user_data_dir() / "audit-anchors"


def default_database() -> str:
    return str(user_data_dir() / "commcare.db")


@dataclass
class Settings:
    database: str
    config_path: Path
    timezone: str = DEFAULT_TZ
    lang: str | None = None
    operator: str = ""
    community: str = DEFAULT_COMMUNITY
    retention_days: int | None = None
    db_timeout: float = DEFAULT_DB_TIMEOUT
    audit_key: Path | None = None  # the audit trail's key file (``commcare.storage.audit_files``)
    file: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)

    @property
    def tz(self):
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timezone)


def read_config_file(path: Path) -> dict:
    if not path.exists():
        return {}
    import tomli

    try:
        with open(path, "rb") as fh:
            return tomli.load(fh)
    except (tomli.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("config.broken", field=str(path), path=str(path), problem=str(exc))
    except RecursionError:  # tomli parses nested arrays and tables by recursion
        from commcare.i18n import t

        raise ConfigError("config.broken", field=str(path), path=str(path), problem=t("config.too_deep"))
    except OSError as exc:
        raise ConfigError("config.unreadable", field=str(path), path=str(path), problem=exc.strerror)


def _pick(name: str, options: dict, file: dict, default, sources: dict):
    if options.get(name) not in (None, ""):
        sources[name] = "option"
        return options[name]
    env = ENV.get(name)
    if env and os.environ.get(env):
        sources[name] = f"env {env}"
        return os.environ[env]
    if file.get(name) not in (None, ""):
        sources[name] = "config file"
        return file[name]
    sources[name] = "default"
    return default


def _operator(options: dict, file: dict, sources: dict) -> str:
    """The acting person as given (``--as``, ``COMMCARE_USER``, config ``operator``), checked:
    an empty ``--as`` or a name with control characters is refused (exit 2, naming where it
    came from). Not given: "" (``commcare.access`` then looks for the OS user's staff member)."""
    from commcare import identity

    if options.get("operator") is not None and not str(options["operator"]).strip():
        raise ConfigError("value.empty", field="--as")
    raw = _pick("operator", options, file, None, sources)
    if raw in (None, ""):
        return ""
    field = {"option": "--as", "config file": "operator"}.get(sources["operator"], "COMMCARE_USER")
    return identity.normalize_name(str(raw), field)


def load_settings(**options) -> Settings:
    """Resolve every setting; ``options`` are the global command-line options."""
    sources: dict = {}
    config_path = Path(_pick("config", options, {}, None, sources) or default_config_path())
    file = read_config_file(config_path)
    check_file(file, config_path)
    settings = Settings(
        database=str(_pick("database", options, file, None, sources) or default_database()),
        config_path=config_path,
        timezone=str(_pick("timezone", options, file, DEFAULT_TZ, sources)),
        lang=_pick("lang", options, file, None, sources),
        operator=_operator(options, file, sources),
        community=str(_pick("community", options, file, DEFAULT_COMMUNITY, sources)),
        retention_days=file.get("retention_days"),
        db_timeout=float(file.get("db_timeout", DEFAULT_DB_TIMEOUT)),
        audit_key=Path(
            _pick("audit_key", options, file, None, sources) or config_path.parent / "audit.key"
        ).expanduser(),
        file=file,
        sources=sources,
    )
    _check(settings)
    return settings


def check_file(file: dict, path: Path) -> None:
    """Refuse (exit 2, naming the key) a key of the config file of the wrong type or out of
    range: ``community = [1, 2]``, ``retention_days = 99999999999``."""
    for key, (kind, bounds) in SCHEMA.items():
        if key in file:
            _check_value(key, file[key], kind, bounds, path)
    for name, spec in (file.get("tags") or {}).items():
        if not isinstance(spec, dict):
            _bad(f"tags.{name}", spec, "table", path)
        for key, value in spec.items():
            wanted = TAG_SCHEMA.get(key)
            if wanted is not None and not _is(value, wanted):
                _bad(f"tags.{name}.{key}", value, wanted, path)


def _check_value(key: str, value, kind: str, bounds, path: Path) -> None:
    if not _is(value, kind):
        _bad(key, value, kind, path)
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise ConfigError(
            "config.out_of_range", field=key, path=str(path), value=_shown(value), low=bounds[0], high=bounds[1]
        )


def _is(value, kind: str) -> bool:
    if kind == "text":
        return isinstance(value, str)
    if kind == "whole number":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "table":
        return isinstance(value, dict)
    if kind == "list of text":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, bool)  # "true or false"


def _bad(key: str, value, kind: str, path: Path):
    from commcare.i18n import t

    raise ConfigError("config.bad_type", field=key, path=str(path), value=_shown(value), kind=t(f"config.kind.{kind}"))


def _shown(value) -> str:
    """A value as the message shows it: short, on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def _check(settings: Settings) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("config.bad_timezone", field="timezone", value=settings.timezone)
    if settings.lang is not None and settings.lang not in ("zh", "en"):
        raise ConfigError("config.bad_lang", field="lang", value=settings.lang)


def write_default_config(settings: Settings, community: str | None = None) -> bool:
    """Write a commented config file if there is none; True if one was written. ``community``
    is written only when given (a register with several communities): a register with one
    uses it unnamed, and a name pinned here would outlive a ``community rename``."""
    path = settings.config_path
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    import json

    text = (
        "# commcare settings. A command-line option or environment variable overrides these.\n"
        f'database = "{settings.database}"\n'
        f'timezone = "{settings.timezone}"\n'
        + (
            f"community = {json.dumps(community, ensure_ascii=False)}\n"
            if community
            else '# community = "幸福社区"  # which one, where the database holds several communities\n'
        )
        + '# lang = "zh"            # zh or en; default: zh (en under an English locale)\n'
        '# operator = "王秀英"     # who you are, for the audit trail\n'
        "# retention_days = 1095  # erase personal data of residents archived this long ago\n"
        '# audit_key = "/secure/commcare-audit.key"  # the audit trail\'s key (default: audit.key beside this file)\n'
        "\n# Extra special-group tags, in addition to those shipped in data/tags.toml:\n"
        '# [tags.bedridden]\n# zh = "卧床"\n# aliases = ["卧床", "失能"]\n# daily_call = true\n'
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return True
