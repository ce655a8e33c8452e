"""The Airflow Assets that chain the DAGs: data-aware triggers instead of clock offsets."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset

# The model registry's champion as of the end of a nightly training run (newly promoted, or kept
# because the new version failed the gate). nightly_training updates it; batch_scoring follows.
# Each event's extra: {"date", "model", "champion", "promoted", "version"}.
CHAMPION = Asset(name="ml_scaling_champion", uri="ml-scaling://registry/champion", group="ml-scaling")


def night_scored(dag_run: Any, events: Any) -> str:
    """The date batch scoring scores: the training night whose champion triggered the run (the
    latest, if several queued up), else the run's own logical date or, without one, its run date."""
    nights = [e.extra["date"] for e in (events or {}).get(CHAMPION, []) if e.extra.get("date")]
    if nights:
        return str(max(nights))
    when = dag_run.logical_date or dag_run.run_after
    return str(when.date().isoformat())
