"""Configuration errors: they name the file, the key and the problem."""

from __future__ import annotations

from pathlib import Path

from profile_sync.errors import TerminalError


class ConfigError(TerminalError):
    """The configuration file is missing, unreadable or invalid."""

    def __init__(self, path: Path | str, key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        super().__init__(f"{path}: {key}: {problem}")
