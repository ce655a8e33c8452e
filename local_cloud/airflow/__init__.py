"""Airflow offline: the settings that point the official operators at the emulator (offline.py),
`make airflow`'s services (standalone.py) and their PostgreSQL (metadata_db.py).
"""
