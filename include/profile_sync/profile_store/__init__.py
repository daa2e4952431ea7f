"""The SQL profile store (SQLAlchemy Core): schema, full import, export."""
