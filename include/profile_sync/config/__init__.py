"""Configuration: typed settings, presets, loader."""

from profile_sync.config.errors import ConfigError
from profile_sync.config.loader import PROJECT_ROOT, config_path, load_settings, resolved_directories
from profile_sync.config.presets import PRESETS, ResolvedDirectory, resolve_directory
from profile_sync.config.settings import Settings

__all__ = [
    "PRESETS", "PROJECT_ROOT", "ConfigError", "ResolvedDirectory", "Settings", "config_path", "load_settings",
    "resolve_directory", "resolved_directories",
]
