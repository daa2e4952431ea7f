"""The built-in profile properties: name → (type, max length).

The profile store has one column per property. Built-in properties follow the
SharePoint Online default property table; ``about_me`` and ``skills`` are set by
people in the profile store and are never mapped by default (the directory never
touches a property no connection maps).
"""

from __future__ import annotations

from typing import NamedTuple

from profile_sync.config.settings import PropertyType


class PropertySpec(NamedTuple):
    """Column type and maximum length of one profile property."""

    type: PropertyType
    max_length: int | None = None
    multi_valued: bool = False
    """Values live in ``profile_property_values`` (one row per value), not in a column."""


BUILTIN_PROPERTIES: dict[str, PropertySpec] = {
    "account_name": PropertySpec("string", 400),
    "user_name": PropertySpec("string", 256),
    "user_principal_name": PropertySpec("string", 256),
    "preferred_name": PropertySpec("string", 256),
    "first_name": PropertySpec("string", 128),
    "last_name": PropertySpec("string", 128),
    "work_phone": PropertySpec("string", 64),
    "work_email": PropertySpec("string", 256),
    "sip_address": PropertySpec("string", 256),
    "office": PropertySpec("string", 256),
    "title": PropertySpec("string", 256),
    "job_title": PropertySpec("string", 256),
    "department": PropertySpec("string", 256),
    "public_site_redirect": PropertySpec("string", 2048),
    "language_preferences": PropertySpec("string", 64),
    "hide_from_address_lists": PropertySpec("boolean"),
    "manager": PropertySpec("string", 400),
    "picture": PropertySpec("binary"),
    "about_me": PropertySpec("text"),
    "skills": PropertySpec("text"),
}
"""Built-in properties, in column order."""
