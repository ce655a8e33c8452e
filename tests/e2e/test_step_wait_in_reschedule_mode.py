"""The EMR step wait in reschedule mode (a deployment without a triggerer, which frees the worker
slot between pokes): every poke is a new process and Airflow clears the task's XComs at each one,
yet each of the step's lines reaches the task log once, while the step runs. `airflow dags test`
of a two-task DAG (the provider's EmrAddStepsOperator, then the wait) against the emulator."""

from __future__ import annotations

import re
import textwrap

import pytest
from scaling_platform.emr import ClusterSettings, job_flow_overrides

from local_cloud.airflow.offline import airflow_env, dags_test, migrate
from local_cloud.process import running_emulator
from local_cloud.server import client
from tests.conftest import BANK, in_network

pytestmark = [pytest.mark.emulator, pytest.mark.airflow]
LINES = 12
# A step that writes a line every 2 s: the wait polls every 2 s (Variable ml_emr_poll_seconds),
# so its lines arrive over several pokes.
SCRIPT = f"""
import time
for i in range(1, {LINES + 1}):
    print(f"progress line {{i}} of {LINES}", flush=True)
    time.sleep(2)
"""
DAG = """
from datetime import datetime

from airflow.providers.amazon.aws.operators.emr import EmrAddStepsOperator
from airflow.sdk import DAG
from scaling_platform.emr_operators import EmrStepSensorWithLogs

with DAG("step_wait_reschedule", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    add = EmrAddStepsOperator(
        task_id="add",
        job_flow_id="{{ dag_run.conf['cluster'] }}",
        steps=[{
            "Name": "progress",
            "ActionOnFailure": "CONTINUE",
            "HadoopJarStep": {
                "Jar": "command-runner.jar",
                "Args": ["spark-submit", "--deploy-mode", "cluster", "{{ dag_run.conf['script'] }}"],
            },
        }],
    )
    wait = EmrStepSensorWithLogs(
        task_id="wait",
        job_flow_id="{{ dag_run.conf['cluster'] }}",
        step_id="{{ ti.xcom_pull(task_ids='add')[0] }}",
        mode="reschedule",
        deferrable=False,
        timeout=600,
    )
    add >> wait
"""


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    work = tmp_path_factory.mktemp("reschedule")
    (work / "dags").mkdir()
    (work / "dags" / "step_wait_reschedule.py").write_text(textwrap.dedent(DAG))
    (work / "progress.py").write_text(SCRIPT)
    with running_emulator(work, buckets=["logs"]) as endpoint:
        env = airflow_env(work / "home", endpoint, work / "storage", BANK, "logs")
        env["AIRFLOW__CORE__DAGS_FOLDER"] = str(work / "dags")
        migrate(env)
        yield env, endpoint, work


def test_each_line_is_shown_once_while_the_step_runs_though_every_poke_is_a_new_process(offline):
    env, endpoint, work = offline
    emr = client(endpoint, "emr")
    cluster = emr.run_job_flow(
        **job_flow_overrides(
            ClusterSettings(name="reschedule", log_uri="s3://logs/emr/", **in_network()),
            dag_id="t",
            run_id="r",
        )
    )["JobFlowId"]
    while_running: list[str] = []

    def watch(line: str) -> None:
        if "[step stdout] progress line" in line:
            (step,) = emr.list_steps(ClusterId=cluster)["Steps"]
            if step["Status"]["State"] == "RUNNING":
                while_running.append(line)

    conf = {"cluster": cluster, "script": str(work / "progress.py")}
    code, output, states = dags_test(env, "step_wait_reschedule", conf, "2026-11-20", on_line=watch)

    assert code == 0 and states == {"add": "success", "wait": "success"}, output[-4000:]
    shown = re.findall(r"\[step stdout\] progress line (\d+) of", output)
    assert shown == [str(i) for i in range(1, LINES + 1)], shown  # each once, in order
    assert while_running, "no line was shown while the step ran"
    # The wait was rescheduled between pokes: more than one process showed the lines.
    assert output.count("[DAG TEST] starting task_id=wait") > 1
