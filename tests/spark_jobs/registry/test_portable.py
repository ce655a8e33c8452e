"""The portable export predicts what the Spark model predicts, without Spark."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator

from spark_jobs import storage
from spark_jobs.data.contract import inspect_input, read_checked
from spark_jobs.registry.portable import PortableModel, Scorer, export_pipeline
from spark_jobs.training.features import (
    TrainParams,
    build_pipeline,
    split,
    with_label,
    with_positive_probability,
)
from tests.conftest import BANK, ROOT


@pytest.fixture(scope="module")
def fitted(spark, bank_spec):
    data = with_label(read_checked(spark, inspect_input(str(BANK), bank_spec), bank_spec), bank_spec)
    train, test = split(data, TrainParams())
    model = build_pipeline(bank_spec, TrainParams()).fit(train)
    doc = export_pipeline(model, bank_spec)
    return model, test, PortableModel.from_bytes(storage.dump_json(doc))


def _spark_vs_portable(model, frame, portable, bank_spec):
    scored = with_positive_probability(model.transform(frame)).select(*bank_spec.features, "p_positive")
    rows = scored.toPandas()
    spark_p, portable_p = rows["p_positive"].to_numpy(), portable.predict_proba(rows)
    # The Lambda handler's scorer (plain Python, no numpy) gives the same numbers.
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    scorer = Scorer(portable.doc)
    assert np.max(np.abs(spark_p - np.array([scorer.probability(r) for r in records]))) < 1e-9
    # So does batch scoring's vectorised form, on the frame as Arrow hands it to a pandas UDF.
    assert np.max(np.abs(spark_p - scorer.probabilities(rows[bank_spec.features]))) < 1e-9
    return spark_p, portable_p


@pytest.mark.spark
def test_portable_reproduces_spark_probabilities_on_the_test_split(fitted, bank_spec):
    model, test, portable = fitted
    spark_p, portable_p = _spark_vs_portable(model, test, portable, bank_spec)
    assert len(spark_p) > 800
    assert np.max(np.abs(spark_p - portable_p)) < 1e-6


@pytest.mark.spark
def test_unknown_categories_and_missing_values_score_as_in_spark(spark, fitted, bank_spec):
    model, test, portable = fitted
    edited = test.limit(50).toPandas()
    edited.loc[0:9, "job"] = "astronaut"  # never seen in training
    edited.loc[10:19, "month"] = None
    edited.loc[20:29, "balance"] = None  # imputed with the training mean
    edited = edited.astype({"balance": "Int64"})
    frame = spark.createDataFrame(edited.astype(object).where(edited.notna(), None), schema=test.schema)
    spark_p, portable_p = _spark_vs_portable(model, frame, portable, bank_spec)
    assert np.max(np.abs(spark_p - portable_p)) < 1e-6


@pytest.mark.spark
def test_export_is_plain_json_loaded_as_a_scikit_learn_estimator_without_spark(fitted, tmp_path):
    _, test, portable = fitted
    path = tmp_path / "model.json"
    path.write_bytes(storage.dump_json(portable.doc))
    assert json.loads(path.read_text())["format"] == "ml-scaling/portable-logistic-regression"
    assert isinstance(portable.estimator, BaseEstimator)
    records = test.limit(3).toPandas().drop(columns=["y", "label"]).to_dict("records")
    expected = portable.predict_proba(records)
    # A fresh interpreter in which importing pyspark fails.
    code = (
        "import sys, json; sys.modules['pyspark'] = None\n"
        "from spark_jobs.registry.portable import PortableModel\n"
        f"m = PortableModel.from_bytes(open({str(path)!r}, 'rb').read())\n"
        f"print(json.dumps(m.predict_proba({records!r}).tolist()))\n"
        f"print(json.dumps(m.estimator.predict(m.frame({records!r})).tolist()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    probabilities, labels = (json.loads(line) for line in out.stdout.splitlines())
    assert probabilities == pytest.approx(expected.tolist(), abs=1e-12)
    assert set(labels) <= {"yes", "no"}


def test_other_formats_are_refused():
    with pytest.raises(ValueError, match="not a portable model"):
        PortableModel.from_bytes(b'{"format": "pickle", "format_version": 1}')


def _tiny_doc():
    return {
        "format": "ml-scaling/portable-logistic-regression",
        "format_version": 1,
        "dataset": "tiny",
        "target": {"column": "t", "positive": "yes", "negative": "no"},
        "numeric": [{"name": "x", "impute": 2.0, "mean": 1.0, "std": 2.0, "weight": 0.5}],
        "categorical": [{"name": "code", "categories": ["1", "2"], "weights": [1.0, -1.0]}],
        "intercept": -0.25,
    }


@pytest.mark.parametrize(
    ("record", "margin"),
    [
        ({"x": 3.0, "code": "1"}, -0.25 + 0.5 * 1.0 + 1.0),
        ({"x": 3.0, "code": 2}, -0.25 + 0.5 * 1.0 - 1.0),  # a number sent for a text category
        ({"x": None, "code": "9"}, -0.25 + 0.5 * 0.5),  # imputed x, unknown category
        ({"x": -1.0, "code": None}, -0.25 + 0.5 * -1.0),  # missing category
    ],
    ids=["known", "numeric-code", "imputed-and-unknown", "missing-category"],
)
def test_portable_formula_by_hand(record, margin):
    model = PortableModel.from_bytes(json.dumps(_tiny_doc()).encode())
    assert model.predict_proba([record])[0] == pytest.approx(1 / (1 + np.exp(-margin)), abs=1e-15)
    if not isinstance(record["code"], int):  # the scorer takes checked records: categories as text
        expected = pytest.approx(1 / (1 + np.exp(-margin)), abs=1e-15)
        assert Scorer(_tiny_doc()).probability(record) == expected
        frame = pd.DataFrame([record]).astype({"x": "float64", "code": "object"})
        assert Scorer(_tiny_doc()).probabilities(frame)[0] == expected


def test_scorer_labels_with_sparks_threshold_and_survives_extreme_margins():
    scorer = Scorer(_tiny_doc())
    assert scorer.label(0.5) == "no" and scorer.label(0.5000001) == "yes"
    assert scorer.probability({"x": -1e6, "code": None}) == 0.0
    assert scorer.probability({"x": 1e6, "code": None}) == 1.0
    extreme = pd.DataFrame({"x": [-1e6, 1e6, 1.0], "code": [None, None, "1"]})
    assert list(scorer.probabilities(extreme)[:2]) == [0.0, 1.0]
    assert list(scorer.labels(scorer.probabilities(extreme))) == ["no", "yes", "yes"]
