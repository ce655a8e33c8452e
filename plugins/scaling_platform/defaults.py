"""What every task of the project's DAGs shares: owner, retries, the failure notification."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from scaling_platform.notifications import notify_failure


def default_args(**overrides: Any) -> dict[str, Any]:
    """A DAG's default_args: the project's defaults, then the DAG's own."""
    return {
        "owner": "ml-platform",
        "retries": 1,
        "retry_delay": timedelta(minutes=1),
        "on_failure_callback": notify_failure,
    } | overrides
