"""Airflow offline: the settings that point the official operators at the emulator (offline.py),
`airflow dags test` with its tasks' final states (dags_test.py), `make airflow`'s services
(standalone.py) and their PostgreSQL (metadata_db.py).
"""
