"""Profile Sync: user profile synchronization engine (no Airflow imports here).

Packages, named after the vocabulary of DESIGN §1:

- ``config``          typed configuration, presets, loader
- ``directory``       directory connections: entries in (LDIF, LDAP), DN handling
- ``sync``            connector spaces, scope, join rules, attribute flow, references,
                      metaverse, pending exports
- ``profile_store``   the SQL profile store: schema, full import, export (apply)
- ``state``           state store (Parquet + manifest), lease, run history
- ``run``             one function per DAG step, the run context and summaries
- ``sample``          the sample directory generator
"""

__version__ = "0.1.0"
