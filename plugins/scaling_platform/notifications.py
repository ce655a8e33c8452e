"""One failure notification for every DAG: a structured log line, and a webhook when configured.

Every failed task logs `task failed: {json}` (DAG, task, run, try, logical date, log URL, error,
and the same as one line of `text`). If the Airflow connection `ml_alerts_webhook` exists (type
http, its host the webhook's full URL, e.g. a Slack or Teams incoming webhook, which show
`text`), the same JSON is POSTed to it; without it, nothing else happens. A webhook that fails
is logged and never hides the task's own failure.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

if TYPE_CHECKING:
    from airflow.sdk import Context

WEBHOOK_CONN_ID = "ml_alerts_webhook"
log = logging.getLogger(__name__)


def failure_summary(context: Context) -> dict[str, Any]:
    """What a person needs to find the failure: the same fields in the log and the webhook."""
    ti = context["ti"]
    logical_date = context.get("logical_date")
    error = context.get("exception")
    error_text = f"{type(error).__name__}: {error}"[:2000] if error else None
    summary = {
        "event": "task_failed",
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "run_id": ti.run_id,
        "try_number": ti.try_number,
        "logical_date": logical_date.isoformat() if logical_date else None,
        "log_url": ti.log_url,
        "error": error_text,
    }
    summary["text"] = (
        f"{ti.dag_id}.{ti.task_id} failed (try {ti.try_number} of run {ti.run_id}): "
        f"{error_text or 'no error recorded'}. Log: {ti.log_url}"
    )
    return summary


class FailureNotifier(BaseNotifier):
    """`on_failure_callback` for every task (through the DAGs' default_args)."""

    def __init__(self, conn_id: str = WEBHOOK_CONN_ID):
        super().__init__()
        self.conn_id = conn_id

    def notify(self, context: Context) -> None:
        summary = failure_summary(context)
        log.error("task failed: %s", json.dumps(summary, sort_keys=True))
        if not self._webhook_configured():
            return
        from airflow.providers.http.hooks.http import HttpHook

        try:
            HttpHook(method="POST", http_conn_id=self.conn_id).run(
                json=summary, extra_options={"timeout": 10, "check_response": True}
            )
        except Exception:  # an alert that cannot be sent must not mask the task's failure
            log.exception("could not post the failure to connection %s", self.conn_id)

    def _webhook_configured(self) -> bool:
        from airflow.sdk import BaseHook

        try:
            BaseHook.get_connection(self.conn_id)
        except Exception:  # AirflowNotFoundException: alerts are off, the default
            return False
        return True


notify_failure = FailureNotifier()
