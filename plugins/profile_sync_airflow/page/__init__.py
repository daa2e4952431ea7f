"""The Profile Sync page in the Airflow UI: a FastAPI app (``app.py``) mounted by the Airflow plugin
(``plugins/profile_sync_plugin.py``), its HTML/JS view (``static/``), who may do what (``access.py``)
and what only Airflow knows (``orchestrator.py``). The figures come from the engine
(``include/profile_sync/status``)."""
