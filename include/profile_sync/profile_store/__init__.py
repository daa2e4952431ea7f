"""The SQL profile store (SQLAlchemy Core): schema, full import, export."""

import profile_sync._pandas  # noqa: F401  (engine-wide pandas settings)
