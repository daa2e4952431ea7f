"""Loading the configuration file: YAML → validated :class:`Settings`.

The path comes from ``PROFILE_SYNC_CONFIG`` (default ``include/profile_sync.yaml``).
Errors name the file, the key and what is wrong, before any I/O to a directory
or database happens.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import yaml
from pydantic import ValidationError

from profile_sync.config.errors import ConfigError
from profile_sync.config.presets import ResolvedDirectory, resolve_directory
from profile_sync.config.properties import BUILTIN_PROPERTIES
from profile_sync.config.settings import Settings
from profile_sync.errors import ProfileSyncError

PROJECT_ROOT = Path(os.environ.get("PROFILE_SYNC_HOME") or Path(__file__).resolve().parents[3])
"""The project root: relative paths in the configuration are relative to it."""

DEFAULT_CONFIG = PROJECT_ROOT / "include" / "profile_sync.yaml"


def config_path() -> Path:
    """The configuration file in effect (``PROFILE_SYNC_CONFIG`` or the default)."""
    return Path(os.environ.get("PROFILE_SYNC_CONFIG") or DEFAULT_CONFIG)


def _key(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_settings(path: Path | str | None = None) -> Settings:
    """Read and validate the configuration file."""
    path = Path(path) if path else config_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(path, "(file)", "the configuration file does not exist") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(path, "(file)", f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(path, "(top level)", "expected a mapping of settings")
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        problems = "; ".join(f"{_key(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(path, _key(first["loc"]), problems) from None
    _check_properties(path, settings)
    _check_business_systems(path, settings)
    return settings


def _check_properties(path: Path, settings: Settings) -> None:
    known = set(BUILTIN_PROPERTIES) | set(settings.custom_properties)
    for i, d in enumerate(settings.directories):
        try:
            resolved = resolve_directory(d)
        except ProfileSyncError as exc:
            raise ConfigError(path, f"directories[{i}].filter", str(exc)) from None
        unknown_join = sorted({r.metaverse for r in d.join} - known)
        if unknown_join:
            raise ConfigError(path, f"directories[{i}].join",
                              f"unknown profile properties {unknown_join}; known: {', '.join(sorted(known))}")
        unknown = sorted(set(resolved.mappings) - known)
        if unknown:
            raise ConfigError(
                path, f"directories[{i}].mappings",
                f"unknown profile properties {unknown}; known: {', '.join(sorted(known))} "
                "(declare new ones under custom_properties)",
            )
        multi = sorted(p for p in resolved.mappings if p in settings.custom_properties
                       and settings.custom_properties[p].multi_valued)
        if multi:
            raise ConfigError(path, f"directories[{i}].mappings",
                              f"multi-valued properties {multi} can only be fed by a business system")


def _check_business_systems(path: Path, settings: Settings) -> None:
    """Business-system mappings and joins against the profile properties (DESIGN §3)."""
    if not settings.business_systems:
        return
    known = set(BUILTIN_PROPERTIES) | set(settings.custom_properties)
    multi = {p for p, c in settings.custom_properties.items() if c.multi_valued}
    directory_fed: dict[str, str] = {}
    for d in resolved_directories(settings):
        for p, m in d.mappings.items():
            if m.direction in ("import", "both"):
                directory_fed.setdefault(p, d.name)
    owner: dict[str, str] = {}
    for i, b in enumerate(settings.business_systems):
        key = f"business_systems[{i}].mappings"
        unknown = sorted(set(b.mappings) - known)
        if unknown:
            raise ConfigError(path, key, f"unknown profile properties {unknown}; known: {', '.join(sorted(known))} "
                                         "(declare new ones under custom_properties)")
        for p in b.mappings:
            if p in directory_fed:
                raise ConfigError(path, key, f"{p!r} is fed by directory {directory_fed[p]!r} (the directory wins "
                                             "for mapped properties); map the business system to another property")
            if p in owner:
                raise ConfigError(path, key, f"{p!r} is already fed by business system {owner[p]!r}; one owner "
                                             "per property")
            owner[p] = b.name
    for i, b in enumerate(settings.business_systems):
        prop = b.join.profile_property
        key = f"business_systems[{i}].join.profile_property"
        if prop not in known:
            raise ConfigError(path, key, f"unknown profile property {prop!r}; known: {', '.join(sorted(known))}")
        if prop in multi:
            raise ConfigError(path, key, f"{prop!r} is multi-valued; join on a single-valued property")
        if prop in owner:
            raise ConfigError(path, key, f"{prop!r} is fed by business system {owner[prop]!r}; join on a property "
                                         "the directory (or people) set, so the join does not depend on the "
                                         "order business systems run in")
        custom = settings.custom_properties.get(prop)
        if (custom.type if custom else BUILTIN_PROPERTIES[prop].type) == "binary":
            raise ConfigError(path, key, f"{prop!r} is binary; join on a text, number or date property")


def resolved_directories(settings: Settings) -> list[ResolvedDirectory]:
    """Directory connections with presets applied, in precedence order."""
    indexed = list(enumerate(settings.directories))
    indexed.sort(key=lambda p: (p[1].precedence if p[1].precedence is not None else p[0], p[0]))
    return [resolve_directory(d) for _, d in indexed]


def fingerprint(settings: Settings) -> dict[str, str]:
    """Per-connection hash of what a full synchronization depends on (mappings, containers, filters, classes)."""
    out = {}
    for d in resolved_directories(settings):
        doc = {
            "type": d.connection.type,
            "containers": sorted(x.lower() for x in d.connection.containers),
            "excluded": sorted(x.lower() for x in d.connection.excluded_containers),
            "filter": d.connection.filter,
            "classes": [sorted(d.person_object_classes), sorted(d.group_object_classes),
                        sorted(d.excluded_object_classes)],
            "anchor": d.anchor,
            "mappings": {k: v.model_dump() for k, v in sorted(d.mappings.items())},
            "join": [r.model_dump() for r in d.connection.join],
            "project": d.connection.project,
            "precedence": {k: list(v) for k, v in sorted(settings.precedence.items())},
            "account_name_format": settings.account_name_format,
            "disabled_accounts": settings.deletion.disabled_accounts,
        }
        out[d.name] = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]
    return out
