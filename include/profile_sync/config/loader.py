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
