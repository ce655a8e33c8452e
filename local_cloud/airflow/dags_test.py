"""`airflow dags test`, then the final state of each of its run's tasks, in one interpreter.

`python -m local_cloud.airflow.dags_test STATES_FILE DAG_ID LOGICAL_DATE [dags test options]` runs
Airflow's own command line as the `airflow` script does, then writes the run's states to
STATES_FILE as JSON (a mapped task's instances as `task_id[i]`). offline.dags_test needs both; asking
`airflow tasks states-for-dag-run` afterwards started Airflow a second time, about 2.5 s of CPU a run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def task_states(dag_id: str, logical_date: str) -> dict[str, str]:
    """Each task instance's state in the run of `dag_id` at `logical_date` (or with that run id),
    found as `airflow tasks states-for-dag-run` finds it."""
    from airflow.cli.utils import fetch_dag_run_from_run_id_or_logical_date_string
    from airflow.utils.session import create_session

    with create_session() as session:
        run, _ = fetch_dag_run_from_run_id_or_logical_date_string(
            dag_id=dag_id, value=logical_date, session=session
        )
        if run is None:
            return {}
        return {
            ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): ti.state or ""
            for ti in run.task_instances
        }


def main(argv: list[str]) -> None:
    states_file, dag_id, logical_date, *options = argv
    sys.argv = ["airflow", "dags", "test", dag_id, logical_date, *options]
    from airflow.__main__ import main as airflow

    try:
        airflow()  # type: ignore[no-untyped-call]  # a failed run raises SystemExit("DagRun failed"), as from the airflow script
    finally:
        try:
            Path(states_file).write_text(json.dumps(task_states(dag_id, logical_date)))
        except Exception as error:  # no states is the caller's answer; the run's own error stands
            print(f"could not read the task states of {dag_id} {logical_date}: {error}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
