"""Make the server fixtures available here even when no top-level conftest registers them.

``pytest_plugins`` is only honoured in a top-level conftest, so this registers the plugin
module at configure time, and only if it is not registered already (registering it twice
would start a second copy of each session server).
"""

from __future__ import annotations

import pytest

PLUGIN = "tests.servers.fixtures"


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.import_plugin(PLUGIN)
