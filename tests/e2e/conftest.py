"""The e2e tests' shared fixtures live in tests/conftest.py; these names are re-exported."""

from __future__ import annotations

from tests.conftest import TRAINED_VERSION, copy_of, trained_storage

# batch_scoring's EMR road: skipped on the pods' road (the default).
EMR_TASKS = ("emr_plan", "create_cluster", "wait_for_cluster", "add_steps", "wait_for_step")
EMR_TASKS += ("emr_summaries", "terminate_cluster")

__all__ = ["EMR_TASKS", "TRAINED_VERSION", "copy_of", "trained_storage"]
