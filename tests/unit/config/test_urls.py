"""Database URLs: Airflow's spelling mapped once, passwords refused in the file and never shown."""

from __future__ import annotations

import pytest
import yaml

from profile_sync.config.errors import ConfigError
from profile_sync.config.loader import load_settings
from profile_sync.config.urls import has_password, mask_url, mask_urls_in, sqlalchemy_url


@pytest.mark.parametrize(("url", "expected"), [
    ("postgres://u:p@db:5432/profiles", "postgresql+psycopg2://u:p@db:5432/profiles"),  # Airflow's Postgres type
    ("postgresql://u@db/profiles", "postgresql+psycopg2://u@db/profiles"),
    ("POSTGRES://u@db/p", "postgresql+psycopg2://u@db/p"),
    ("postgresql+psycopg2://u@db/p", "postgresql+psycopg2://u@db/p"),
    ("sqlite:///.local/profiles.db", "sqlite:///.local/profiles.db"),
    ("mysql+pymysql://u@db/p", "mysql+pymysql://u@db/p"),
])
def test_airflow_spelling_becomes_what_sqlalchemy_loads(url, expected):
    assert sqlalchemy_url(url) == expected


@pytest.mark.parametrize(("url", "secret"), [
    ("postgresql+psycopg2://profile_sync:s3cr%40t@db.example:5432/profiles", "s3cr%40t"),
    ("postgres://u:pa:ss@db/p", "pa:ss"),
    ("postgresql://u@db/p?sslmode=require&password=hunter2", "hunter2"),
    ("postgresql://u:hunter2@db/p?password=hunter2", "hunter2"),
    ("weird scheme://u:hunter2@@host", "hunter2"),  # not parseable by SQLAlchemy: masked all the same
])
def test_a_password_is_found_and_never_shown(url, secret):
    assert has_password(url)
    shown = mask_url(url)
    assert secret not in shown and "***" in shown
    assert "db" in shown or "host" in shown  # the rest stays readable


@pytest.mark.parametrize("url", ["sqlite:///.local/profiles.db", "postgresql+psycopg2://u@db:5432/p",
                                 "postgresql://db:5432/p", "sqlite://", "postgresql://u@db/p?sslmode=require"])
def test_urls_without_a_password_are_shown_as_they_are(url):
    assert not has_password(url)
    assert mask_url(url) == url


def test_a_password_inside_a_driver_message_is_masked():
    url = "postgresql+psycopg2://u:Tr0ub4dor@db/p"
    text = 'could not connect with "postgresql+psycopg2://u:Tr0ub4dor@db/p" (password Tr0ub4dor)'
    assert "Tr0ub4dor" not in mask_urls_in(text, url)


def _config(tmp_path, **profile_store) -> ConfigError:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"directories": [{"name": "c", "path": "d.ldif", "containers": ["DC=x"]}],
                                    "profile_store": profile_store}))
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    return err.value


@pytest.mark.parametrize("url", ["postgresql+psycopg2://profile_sync:hunter2@db/profiles",
                                 "postgres://u@db/profiles?password=hunter2"])
def test_profile_store_url_with_a_password_is_refused_without_showing_it(tmp_path, url):
    err = _config(tmp_path, url=url)
    assert err.key == "profile_store.url"
    assert "holds a password" in str(err) and "profile_store.conn_id" in str(err)
    assert "hunter2" not in str(err)


def test_profile_store_url_without_a_password_is_accepted(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"directories": [{"name": "c", "path": "d.ldif", "containers": ["DC=x"]}],
                                    "profile_store": {"url": "postgres://profile_sync@db/profiles"}}))
    assert load_settings(path).profile_store.url == "postgres://profile_sync@db/profiles"
