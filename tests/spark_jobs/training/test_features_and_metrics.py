"""Pure transforms and metrics on tiny in-memory frames."""

from __future__ import annotations

import pytest
from pyspark.testing import assertDataFrameEqual

from spark_jobs.training.features import TrainParams, build_pipeline, split, with_label
from spark_jobs.training.metrics import evaluate, roc_points, summarize_confusion


def test_with_label_marks_the_positive_value(spark, bank_spec):
    df = spark.createDataFrame([("yes",), ("no",)], "y string")
    assertDataFrameEqual(
        with_label(df, bank_spec),
        spark.createDataFrame([("yes", 1.0), ("no", 0.0)], "y string, label double"),
    )


def test_split_is_seeded_and_disjoint(spark):
    df = spark.range(2000).repartition(2)
    train_a, test_a = split(df, TrainParams(seed=7, test_fraction=0.25))
    train_b, test_b = split(df, TrainParams(seed=7, test_fraction=0.25))
    assertDataFrameEqual(test_a, test_b)
    assert train_a.join(test_a, "id").count() == 0
    assert train_a.count() + test_a.count() == 2000
    assert 400 < test_a.count() < 600
    _, test_c = split(df, TrainParams(seed=8, test_fraction=0.25))
    assert sorted(r.id for r in test_c.collect()) != sorted(r.id for r in test_a.collect())


def test_pipeline_stages_follow_the_spec(spark, bank_spec):  # the stages are JVM objects
    stages = [type(s).__name__ for s in build_pipeline(bank_spec, TrainParams()).getStages()]
    assert stages == [
        "SQLTransformer",
        "Imputer",
        "VectorAssembler",
        "StandardScaler",
        "StringIndexer",
        "OneHotEncoder",
        "VectorAssembler",
        "LogisticRegression",
    ]


def test_confusion_summary():
    s = summarize_confusion(tp=8, fp=2, tn=85, fn=5)
    assert s["accuracy"] == pytest.approx(0.93)
    assert s["precision"] == pytest.approx(0.8)
    assert s["recall"] == pytest.approx(8 / 13)
    assert s["f1"] == pytest.approx(2 * 0.8 * (8 / 13) / (0.8 + 8 / 13))
    assert summarize_confusion(0, 0, 10, 0)["f1"] == 0.0


def _scored(spark, rows):
    return spark.createDataFrame(
        [(label, p, p) for label, p in rows], "label double, rawPrediction double, p_positive double"
    )


def test_evaluate_on_known_scores(spark):
    # Positives score 0.9/0.8/0.4, negatives 0.6/0.3/0.2/0.1: one inverted pair of 12.
    scored = _scored(
        spark, [(1.0, 0.9), (1.0, 0.8), (1.0, 0.4), (0.0, 0.6), (0.0, 0.3), (0.0, 0.2), (0.0, 0.1)]
    )
    m = evaluate(scored)
    assert m["roc_auc"] == pytest.approx(11 / 12)
    assert m["confusion_matrix"] == {"tp": 2, "fp": 1, "tn": 3, "fn": 1}
    assert 0.0 < m["pr_auc"] <= 1.0


def test_roc_points_run_from_origin_to_corner_monotonically(spark):
    scored = _scored(spark, [(1.0, 0.9), (1.0, 0.8), (1.0, 0.4), (0.0, 0.6), (0.0, 0.3), (0.0, 0.2)])
    points = roc_points(scored, bins=10)
    assert points[0] == (0.0, 0.0) and points[-1] == (1.0, 1.0)
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(points, points[1:], strict=False))
    # Trapezoid area under the binned curve equals the exact AUC when no bin mixes classes.
    area = sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in zip(points, points[1:], strict=False))
    assert area == pytest.approx(8 / 9)
