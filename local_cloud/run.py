"""Run a DAG offline: `python -m local_cloud.run DAG_ID [--conf JSON] [--logical-date DATE]`.

Starts the emulator, prepares a project-local Airflow (.airflow/, SQLite), runs
`airflow dags test` with the same operators as production, prints every task's final state,
and stops the emulator, whether the run succeeded or not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence

from local_cloud.airflow_offline import airflow_env, dags_test, migrate
from local_cloud.process import ROOT, running_emulator

LOG_BUCKET = "ml-scaling-logs"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_cloud.run", description=__doc__.split("\n")[0])
    parser.add_argument("dag_id")
    parser.add_argument("--conf", default="{}", help="run configuration (JSON), as in the trigger form")
    parser.add_argument("--logical-date", default=dt.date.today().isoformat())
    parser.add_argument("--storage-root", default=str(ROOT / "storage"))
    parser.add_argument("--input", default=str(ROOT / "data" / "bank" / "bank-full.csv"))
    args = parser.parse_args(argv)
    home = ROOT / ".airflow"
    home.mkdir(exist_ok=True)
    with running_emulator(home, buckets=[LOG_BUCKET]) as endpoint:
        print(f"local cloud emulator on {endpoint}", flush=True)
        env = airflow_env(home, endpoint, ROOT / args.storage_root, ROOT / args.input, LOG_BUCKET)
        migrate(env)
        code, output, states = dags_test(env, args.dag_id, json.loads(args.conf), args.logical_date)
    log_path = home / f"{args.dag_id}.log"
    log_path.write_text(output)
    print(f"airflow dags test {args.dag_id} {args.logical_date}: exit {code} (log: {log_path})")
    for task_id, state in states.items():
        print(f"  {state:<16} {task_id}")
    if code != 0:
        print(output[-3000:], file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
