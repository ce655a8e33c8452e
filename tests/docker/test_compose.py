"""docker-compose.yaml, checked as far as a machine without Docker can: the Compose specification's
schema, every file and build context it names, and the same configuration as the offline runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from local_cloud import server
from local_cloud.airflow.offline import DEFAULT_STORAGE_ROOT, airflow_env, stack_parameters
from local_cloud.kubernetes.api import kubeconfig
from tests.conftest import ROOT

SCHEMA = ROOT / ".tools" / "compose-spec.json"  # fetched by `make test` (Makefile: COMPOSE_SCHEMA)
IN_IMAGE = "/opt/ml-scaling"  # where docker/airflow.Dockerfile puts the project
AIRFLOW_COMPONENTS = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"}
EMULATOR = "http://local-cloud:4566"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())  # anchors and << merged


def test_the_file_follows_the_compose_specification(compose):
    if not SCHEMA.exists():
        pytest.fail(f"{SCHEMA} is missing: `make test` fetches it (make {SCHEMA.relative_to(ROOT)})")
    validator = jsonschema.Draft201909Validator(json.loads(SCHEMA.read_text()))
    validator.validate(compose)
    # The schema is strict enough to catch a typo in a service.
    typo = {"image": "postgres:16", "helthcheck": {}}
    assert not validator.is_valid(compose | {"services": compose["services"] | {"postgres": typo}})


def test_one_service_per_airflow_component_with_postgres_and_the_emulator(compose):
    services = compose["services"]
    assert AIRFLOW_COMPONENTS | {
        "airflow-init",
        "storage-init",
        "lambda-ship",
        "postgres",
        "local-cloud",
    } == set(services)
    for name in AIRFLOW_COMPONENTS | {"postgres", "local-cloud"}:
        assert services[name]["healthcheck"]["test"], name
    for name in AIRFLOW_COMPONENTS:
        assert services[name]["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}
        assert services[name]["depends_on"]["local-cloud"] == {"condition": "service_healthy"}
    database = compose["x-airflow-common"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert database.startswith("postgresql+psycopg2://airflow:airflow@postgres/")
    assert services["airflow-apiserver"]["ports"] == ["127.0.0.1:8080:8080"]


def test_every_build_context_dockerfile_and_mount_exists(compose):
    for name, service in compose["services"].items():
        if "build" in service:
            context = ROOT / service["build"]["context"]
            assert context.is_dir(), name
            dockerfile = context / service["build"]["dockerfile"]
            assert dockerfile.is_file(), name
            for source in _copy_sources(dockerfile):
                assert list(context.glob(source)), f"{dockerfile.name}: COPY {source} names nothing"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {volume}"
            else:
                assert source in compose["volumes"], f"{name}: {volume}"


def _copy_sources(dockerfile: Path) -> list[str]:
    """The build-context paths a Dockerfile's COPY instructions read (not those from other stages)."""
    text = dockerfile.read_text().replace("\\\n", " ")
    sources = []
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    return sources


def test_the_emulator_service_runs_the_emulators_own_command_line(compose):
    service = compose["services"]["local-cloud"]
    assert service["entrypoint"] == ["python", "-m", "local_cloud.server"]
    args = server.parse_args(service["command"])
    assert (args.host, args.port) == ("0.0.0.0", 4566)
    # The template, with the offline runs' parameters: the same buckets, roles and security configuration.
    assert args.stack == stack_parameters(DEFAULT_STORAGE_ROOT.split("/")[2])
    for name, dockerfile in args.images.items():
        assert name == "ml-scaling-jobs"
        assert (ROOT / str(dockerfile).removeprefix(IN_IMAGE + "/")).is_file()


def test_airflow_gets_the_same_connections_and_variables_as_offline_runs(compose, tmp_path):
    env = compose["x-airflow-common"]["environment"]
    aws = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
    assert aws["extra"]["endpoint_url"] == EMULATOR
    kube = json.loads(env["AIRFLOW_CONN_KUBERNETES_DEFAULT"])
    assert json.loads(kube["extra"]["kube_config"]) == {
        k: v for k, v in kubeconfig(EMULATOR).items() if k != "preferences"
    }
    offline = airflow_env(tmp_path, EMULATOR, tmp_path / "storage", tmp_path / "in.csv", "logs")
    wanted = {k for k in offline if re.match(r"AIRFLOW_(VAR|CONN)_", k)}
    # Not the offline `dags test` poll interval: under a scheduler the DAG's own interval holds
    # (make airflow drops it too; apache/airflow#71172).
    assert wanted - {"AIRFLOW_VAR_ML_EMR_POLL_SECONDS"} <= set(env)
    assert "AIRFLOW_VAR_ML_EMR_POLL_SECONDS" not in env
    for key in ("AIRFLOW_VAR_ML_EMR_SUBNET_ID", "AIRFLOW_VAR_ML_EMR_SECURITY_GROUPS"):
        assert env[key] == offline[key], key  # the network every emulator creates
    for key in ("AIRFLOW_VAR_ML_STORAGE_ROOT", "AIRFLOW_VAR_ML_INPUT_URI", "AIRFLOW_VAR_ML_SPEC_URI"):
        path = env[key].removeprefix(IN_IMAGE + "/")
        assert key.endswith("STORAGE_ROOT") or (ROOT / path).is_file(), key


def test_every_component_signs_and_checks_task_tokens_with_one_secret(compose):
    """Without a shared secret each container makes its own and every task fails with "Invalid auth
    token: Signature verification failed" (apache/airflow #49646)."""
    secrets = {
        name: compose["services"][name]["environment"].get("AIRFLOW__API_AUTH__JWT_SECRET")
        for name in AIRFLOW_COMPONENTS | {"airflow-init"}
    }
    assert len(set(secrets.values())) == 1 and None not in secrets.values(), secrets


def test_the_storage_volume_is_handed_to_the_services_user_before_anything_writes_to_it(compose):
    services = compose["services"]
    user = compose["x-airflow-common"]["user"].split(":")[0]
    init = services["storage-init"]
    assert init["user"] == "0:0" and init["restart"] == "no"
    assert init["entrypoint"] == ["chown", "-R", f"{user}:0", f"{IN_IMAGE}/storage"]
    assert "ml-storage:/opt/ml-scaling/storage" in init["volumes"]
    writers = [n for n, s in services.items() if "ml-storage:/opt/ml-scaling/storage" in s.get("volumes", [])]
    for name in set(writers) - {"storage-init"}:
        # Directly, or through the emulator every Airflow service waits for.
        needs = services[name]["depends_on"]
        assert "storage-init" in needs or needs.get("local-cloud") == {"condition": "service_healthy"}, name
    assert services["local-cloud"]["depends_on"]["storage-init"] == {
        "condition": "service_completed_successfully"
    }


def test_the_lambda_package_is_shipped_before_any_airflow_service_starts(compose):
    """A release only finds the package (make ship); here a one-shot service ships it first."""
    services = compose["services"]
    ship = services["lambda-ship"]
    root = compose["x-airflow-common"]["environment"]["AIRFLOW_VAR_ML_STORAGE_ROOT"]
    assert ship["entrypoint"] == ["python", "-m", "spark_jobs", "lambda_package", "--storage-root", root]
    assert services["airflow-init"]["depends_on"]["lambda-ship"] == {
        "condition": "service_completed_successfully"
    }
    assert ship["depends_on"]["storage-init"] == {"condition": "service_completed_successfully"}
