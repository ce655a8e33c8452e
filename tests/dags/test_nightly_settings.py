"""What nightly_training's first and gate tasks make of the Params and Variables: the spec's gate
unless a Param overrides it, a spec with its own input, no made-up log bucket."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException
from airflow.sdk.definitions._internal.types import NOTSET

from tests.dags.test_dag_integrity import ROOT


class Variables(dict):
    """The task context's `var["value"]` as Airflow 3's VariableAccessor answers `.get`: a missing
    Variable without a default is NOTSET (truthy), not None."""

    def get(self, key, default=NOTSET):
        return self[key] if key in self else default


def variables(**values):
    return {"value": Variables(values)}


VARIABLES = variables(emr_log_uri="s3://my-logs/emr/", ml_storage_root="s3://bucket/ml")


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags" / "nightly_training.py")).dags["nightly_training"]


def _resolve(dag, var=VARIABLES, **params):
    resolve = dag.get_task("resolve").python_callable
    return resolve(params=dict(dag.params) | params, var=var, ds_nodash="20261120", run_id="r1")


def test_the_spec_and_its_input_come_from_the_params_or_the_variables(dag):
    cfg = _resolve(dag)
    assert cfg["spec_uri"] == "specs/bank_marketing.yaml" and cfg["log_uri"] == "s3://my-logs/emr/"
    cfg = _resolve(dag, spec="specs/penguins.yaml", input_uri="data/penguins/penguins.csv")
    assert (cfg["spec_uri"], cfg["input_uri"]) == ("specs/penguins.yaml", "data/penguins/penguins.csv")
    # Another dataset's spec with the deployment's input would train on the wrong data.
    with pytest.raises(AirflowFailException, match="needs its input_uri too"):
        _resolve(dag, spec="specs/penguins.yaml")


def test_there_is_no_default_log_bucket(dag):
    with pytest.raises(AirflowFailException, match="Variable emr_log_uri is not set"):
        _resolve(dag, var=variables())


def _promote_args(dag, monkeypatch, **params):
    promote = dag.get_task("promote").python_callable
    calls = []
    from scaling_platform import jobs

    from spark_jobs.interface import Decision

    decided = Decision(model="m", version="v", promoted=False, reasons=[])
    monkeypatch.setattr(
        jobs, "run_job", lambda *args, answer: calls.append(args) or answer.model_validate(decided)
    )
    promote(cfg={"storage_root": "r", "spec_uri": "s.yaml", "version": "v"}, params=dict(dag.params) | params)
    (args,) = calls
    return args


def test_the_gate_is_the_specs_unless_a_param_is_given(dag, monkeypatch):
    # Empty gate Params: no override, so the spec's thresholds and tolerance decide.
    args = _promote_args(dag, monkeypatch)
    assert args[:2] == ("registry", "promote") and not any(
        "--min-metric" in a or "--tolerance" in a for a in args
    )
    args = _promote_args(dag, monkeypatch, min_pr_auc=0.3, tolerance=0.05)
    assert args[-2:] == ("--min-metric=pr_auc=0.3", "--tolerance=0.05")


def test_two_models_of_one_night_never_share_a_step_or_a_cluster_name(dag):
    bank = _resolve(dag)
    penguins = _resolve(dag, spec="specs/penguins.yaml", input_uri="data/penguins/penguins.csv")
    assert (bank["model"], penguins["model"]) == ("bank-marketing", "penguins")
    assert bank["version"] == penguins["version"]  # one version id per night, in each model's registry
    step = dag.get_task("step_request").python_callable
    shipped = {"code_uri": "c", "entrypoint_uri": "e", "environment_uri": "v"}
    names = {step(cfg=cfg, code=shipped)[0]["Name"] for cfg in (bank, penguins)}
    assert names == {"train bank-marketing nightly-20261120", "train penguins nightly-20261120"}


def test_an_old_single_function_variable_or_a_too_long_name_fails_with_a_message():
    from scaling_platform.defaults import spot_function

    assert spot_function(variables(), "penguins") == "ml-scaling-spot-predictions-penguins"
    with pytest.raises(AirflowFailException, match="ml_lambda_function is no longer read"):
        spot_function(variables(ml_lambda_function="ml-scaling-spot-predictions"), "penguins")
    with pytest.raises(AirflowFailException, match="at most 64"):
        spot_function(variables(ml_lambda_function_prefix="x" * 60), "penguins")


def test_the_cluster_names_its_security_configuration_and_network_from_the_variables(dag):
    request = dag.get_task("cluster_request").python_callable
    cfg, params = _resolve(dag), dict(dag.params)
    with pytest.raises(AirflowFailException, match="ml_emr_security_configuration is not set"):
        request(cfg=cfg, params=params, var=VARIABLES)
    # Only the configuration: no subnet or groups in the request (not NOTSET either).
    alone = request(
        cfg=cfg, params=params, var=variables(**VARIABLES["value"], ml_emr_security_configuration="x")
    )
    assert (
        "Ec2SubnetId" not in alone["Instances"] and "EmrManagedMasterSecurityGroup" not in alone["Instances"]
    )
    network = {
        "ml_emr_security_configuration": "imdsv2",
        "ml_emr_subnet_id": "subnet-1",
        "ml_emr_security_groups": "sg-primary, sg-nodes",
    }
    found = request(cfg=cfg, params=params, var=variables(**VARIABLES["value"], **network))
    assert found["SecurityConfiguration"] == "imdsv2"
    instances = found["Instances"]
    assert instances["Ec2SubnetId"] == "subnet-1"
    assert (instances["EmrManagedMasterSecurityGroup"], instances["EmrManagedSlaveSecurityGroup"]) == (
        "sg-primary",
        "sg-nodes",
    )
    bad = variables(**VARIABLES["value"], **network | {"ml_emr_security_groups": "sg-only"})
    with pytest.raises(AirflowFailException, match="ml_emr_security_groups"):
        request(cfg=cfg, params=params, var=bad)


def test_the_model_params_rule_is_the_jobs_rule():
    from scaling_platform.defaults import MODEL_NAME_PATTERN

    from spark_jobs.locations import MODEL_NAME

    assert MODEL_NAME_PATTERN == MODEL_NAME.pattern


def test_a_run_whose_lambda_package_was_not_shipped_fails_before_any_cluster(dag, tmp_path):
    """A missing package found only at release time would come after the promotion: the new
    champion would be promoted and never served. ship_code asks first (the real job CLI)."""
    from scaling_platform.jobs import JobFailed

    ship_code = dag.get_task("ship_code").python_callable
    cfg = {"storage_root": str(tmp_path)}
    with pytest.raises(JobFailed, match="make ship STORAGE_ROOT="):
        ship_code(cfg=cfg, var=variables(ml_lambda_role_arn="arn:aws:iam::123456789012:role/r"))
    assert not (tmp_path / "code").exists()  # nothing shipped before the check
