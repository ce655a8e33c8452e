"""The failure notification: one structured log line always, a webhook POST only when configured."""

from __future__ import annotations

import datetime as dt
import json
import logging
from types import SimpleNamespace

from scaling_platform.notifications import WEBHOOK_CONN_ID, FailureNotifier, failure_summary


def _context():
    ti = SimpleNamespace(
        dag_id="batch_scoring",
        task_id="score",
        run_id="scheduled__2026-11-20T04:00:00+00:00",
        try_number=3,
        log_url="http://localhost:8080/dags/batch_scoring/runs/x/tasks/score?try_number=3",
    )
    return {
        "ti": ti,
        "logical_date": dt.datetime(2026, 11, 20, 4, tzinfo=dt.UTC),
        "exception": RuntimeError("pod batch-scoring-x returned a failure"),
    }


def test_the_summary_names_the_failure_and_where_to_read_it():
    assert failure_summary(_context()) == {
        "event": "task_failed",
        "dag_id": "batch_scoring",
        "task_id": "score",
        "run_id": "scheduled__2026-11-20T04:00:00+00:00",
        "try_number": 3,
        "logical_date": "2026-11-20T04:00:00+00:00",
        "log_url": "http://localhost:8080/dags/batch_scoring/runs/x/tasks/score?try_number=3",
        "error": "RuntimeError: pod batch-scoring-x returned a failure",
        "text": "batch_scoring.score failed (try 3 of run scheduled__2026-11-20T04:00:00+00:00): "
        "RuntimeError: pod batch-scoring-x returned a failure. "
        "Log: http://localhost:8080/dags/batch_scoring/runs/x/tasks/score?try_number=3",
    }


def test_off_by_default_only_a_log_line(monkeypatch, caplog, webhook):
    monkeypatch.delenv(f"AIRFLOW_CONN_{WEBHOOK_CONN_ID.upper()}", raising=False)
    with caplog.at_level(logging.ERROR):
        FailureNotifier().notify(_context())
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("task failed: ")]
    assert json.loads(line.removeprefix("task failed: "))["task_id"] == "score"
    assert webhook[1] == []


def test_posts_the_summary_to_the_webhook_connection(monkeypatch, webhook):
    url, received = webhook
    connection = {"conn_type": "http", "host": f"{url}/hooks/ml-alerts"}
    monkeypatch.setenv(f"AIRFLOW_CONN_{WEBHOOK_CONN_ID.upper()}", json.dumps(connection))
    FailureNotifier().notify(_context())
    assert received == [("/hooks/ml-alerts", failure_summary(_context()))]


def test_a_webhook_that_fails_is_logged_and_does_not_raise(monkeypatch, caplog):
    connection = {"conn_type": "http", "host": "http://127.0.0.1:9/nobody-listens"}
    monkeypatch.setenv(f"AIRFLOW_CONN_{WEBHOOK_CONN_ID.upper()}", json.dumps(connection))
    with caplog.at_level(logging.ERROR):
        FailureNotifier().notify(_context())
    assert any("could not post the failure" in r.getMessage() for r in caplog.records)
