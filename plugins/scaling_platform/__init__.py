"""Orchestration glue for the DAGs: operator-argument builders, configuration, callbacks.

Knows the job package only by module names and CLI arguments; never imports it.
"""
