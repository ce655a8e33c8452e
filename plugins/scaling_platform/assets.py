"""The Airflow Assets that chain the DAGs: data-aware triggers instead of clock offsets."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset

# The model registry's champion as of the end of a nightly training run (newly promoted, or kept
# because the new version failed the gate). nightly_training updates it; batch_scoring follows.
# Each event's extra: {"date", "model", "champion", "promoted", "version"}.
CHAMPION = Asset(name="ml_scaling_champion", uri="ml-scaling://registry/champion", group="ml-scaling")


def nights_by_model(events: Any) -> dict[str, str]:
    """The training nights whose champions triggered a run, by model: a run started by several
    queued events (two models' nights, or one model's missed nights) scores each model once, for
    its latest night."""
    nights: dict[str, str] = {}
    for event in (events or {}).get(CHAMPION, []):
        model, date = event.extra.get("model"), event.extra.get("date")
        if model and date:
            nights[model] = max(nights.get(model, date), date)
    return dict(sorted(nights.items()))


def run_date(dag_run: Any) -> str:
    """A run's own date: its logical date or, without one (a manual run), its run date."""
    when = dag_run.logical_date or dag_run.run_after
    return str(when.date().isoformat())
