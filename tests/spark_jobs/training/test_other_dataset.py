"""Another tabular dataset trains with a new spec and no code change (CSV and Parquet)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spark_jobs.registry.store import Registry
from spark_jobs.training import train
from tests.conftest import train_args

SPEC = """
name: churn
format: {fmt}
csv: {{delimiter: ","}}
target: {{column: churned, positive: "churn", negative: "stay"}}
columns:
  customer_id:   {{type: long,   role: ignore}}
  plan:          {{type: string, role: categorical}}
  monthly_spend: {{type: double, role: numeric, min: 0}}
  tenure_months: {{type: integer, role: numeric, max_null_ratio: 0.1}}
  churned:       {{type: string, role: target}}
contract: {{min_rows: 500}}
gate: {{thresholds: {{roc_auc: 0.7}}}}
"""


def _churn_frame(rows: int = 1500) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    plan = rng.choice(["basic", "plus", "pro"], rows)
    spend = rng.gamma(2.0, 20.0, rows).round(2)
    tenure = rng.integers(1, 60, rows).astype("float")
    tenure[rng.random(rows) < 0.05] = np.nan  # some missing, imputed by the pipeline
    logit = -1.0 + 0.03 * spend - 0.06 * np.nan_to_num(tenure, nan=30) + (plan == "basic") * 1.0
    churned = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "churn", "stay")
    return pd.DataFrame(
        {
            "customer_id": np.arange(rows),
            "plan": plan,
            "monthly_spend": spend,
            "tenure_months": pd.array(tenure, dtype="Int64"),
            "churned": churned,
        }
    )


@pytest.mark.spark
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_new_spec_trains_registers_and_promotes(spark, tmp_path, fmt):
    spec = tmp_path / "churn.yaml"
    spec.write_text(SPEC.format(fmt=fmt))
    data = tmp_path / f"churn.{fmt}"
    frame = _churn_frame()
    frame.to_csv(data, index=False) if fmt == "csv" else frame.to_parquet(data, index=False)

    code = train.main(train_args(data, tmp_path / "root", "--promote", spec=spec))

    assert code == 0
    registry = Registry(str(tmp_path / "root"), "churn")
    champion = registry.champion()
    assert champion is not None
    metrics = registry.metrics(champion["version"])
    assert metrics["roc_auc"] > 0.7
    assert metrics["portable_max_abs_diff"] < 1e-6
    model = registry.load_portable()
    assert model.features == ["monthly_spend", "tenure_months", "plan"]
    assert model.doc["target"]["positive"] == "churn"


@pytest.mark.spark
@pytest.mark.parametrize(
    ("fmt", "damage", "expected"),
    [
        (
            "csv",
            lambda path: path.write_text(path.read_text().replace(",12.5,", ",inf,", 1)),
            "value(s) are not a finite number, e.g. 'inf'",
        ),
        ("parquet", lambda path: path.write_bytes(b"PAR1 but not really"), "cannot be read as parquet"),
    ],
    ids=["infinite-number", "corrupt-parquet"],
)
def test_broken_inputs_of_a_new_dataset_fail_clearly(spark, tmp_path, capsys, fmt, damage, expected):
    spec = tmp_path / "churn.yaml"
    spec.write_text(SPEC.format(fmt=fmt))
    data = tmp_path / f"churn.{fmt}"
    frame = _churn_frame()
    frame.loc[7, "monthly_spend"] = 12.5
    frame.to_csv(data, index=False) if fmt == "csv" else frame.to_parquet(data, index=False)
    damage(data)

    code = train.main(train_args(data, tmp_path / "root", spec=spec))

    err = capsys.readouterr().err
    assert code == 3, err
    assert expected in err and "Traceback" not in err
    assert Registry(str(tmp_path / "root"), "churn").versions() == []
