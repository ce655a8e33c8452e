"""Data drift against the champion's training data: measured, reported, and able to block a
promotion (the case seen: 300 rows with mojibake and emoji categories were promoted unflagged)."""

from __future__ import annotations

import csv
import json
import math

import pytest

from spark_jobs import storage
from spark_jobs.registry.store import Gate, Registry, evaluate_gate
from spark_jobs.training import drift, train
from tests.conftest import BANK, train_args
from tests.e2e.conftest import TRAINED_VERSION, copy_of


def test_psi_is_zero_for_the_same_distribution_and_grows_with_the_shift():
    assert drift.psi([0.5, 0.5], [0.5, 0.5]) == 0
    small, large = drift.psi([0.5, 0.5], [0.55, 0.45]), drift.psi([0.5, 0.5], [0.9, 0.1])
    assert 0 < small < 0.1 < 0.25 < large
    assert math.isclose(small, 0.05 * math.log(0.55 / 0.5) - 0.05 * math.log(0.45 / 0.5))
    # A bin empty on one side counts at a floor share, not as an infinite index.
    assert math.isfinite(drift.psi([1.0, 0.0], [0.0, 1.0]))


def _profile(shares, numeric=None):
    features = {"job": {"kind": "categorical", "shares": shares}}
    if numeric:
        features["age"] = {"kind": "numeric", "deciles": numeric, "edges": sorted(set(numeric)), "shares": []}
        features["age"]["shares"] = [0.1] * (len(features["age"]["edges"]) + 1) + [0.0]
    return {"rows": 1000, "features": features}


def _now(shares, outside=0.0, top=()):
    """What category_shares measures of the new data over the champion's categories."""
    return {
        "job": {
            "shares": shares | ({drift.OTHER: outside} if outside else {}),
            "outside": outside,
            "top": top,
        }
    }


def test_unseen_categories_are_named_with_their_share_and_cut_short():
    champion = _profile({"admin.": 0.5, "technician": 0.5})
    long_value = "Ã©" * 100
    top = [("admin.\U0001f600", 0.06), (long_value, 0.04)]
    found = drift.compare(champion, champion, {}, _now({"admin.": 0.45, "technician": 0.45}, 0.10, top))
    job = found["features"]["job"]
    assert job["unseen_share"] == pytest.approx(0.10)
    assert job["unseen"][0] == "admin.\U0001f600" and len(job["unseen"][1]) < 100
    assert found["max_unseen_feature"] == "job" and found["max_unseen_share"] == pytest.approx(0.10)
    assert found["max_psi_feature"] == "job" and found["max_psi"] > 0.1


def test_a_champion_that_kept_only_its_top_categories_is_compared_over_those():
    """Many categories, the same distribution: no drift, and no value called unseen, since the
    champion's list was not complete."""
    kept = {f"c{i}": 0.0005 for i in range(1000)}
    champion = _profile(kept | {drift.OTHER: 0.5})
    found = drift.compare(champion, champion, {}, _now(kept, 0.5, [("c1500", 0.0005)]))
    assert found["features"]["job"]["psi"] == 0
    assert found["features"]["job"]["unseen_share"] is None and found["max_unseen_feature"] is None


def test_numeric_drift_is_measured_over_the_champions_bins():
    deciles = [float(x) for x in range(10, 100, 10)]
    champion, new = _profile({"a": 1.0}, deciles), _profile({"a": 1.0}, [d * 10 for d in deciles])
    same = drift.compare(champion, new, {"age": champion["features"]["age"]["shares"]}, _now({"a": 1.0}))
    assert same["features"]["age"]["psi"] == 0 and same["max_unseen_feature"] is None
    # Every value now above the champion's top decile.
    shifted = drift.compare(champion, new, {"age": [0.0] * 9 + [1.0, 0.0]}, _now({"a": 1.0}))
    assert shifted["features"]["age"]["psi"] > 1 and shifted["max_psi_feature"] == "age"
    assert shifted["features"]["age"]["median"] == [50.0, 500.0]


def test_the_gate_refuses_past_the_spec_limits_and_says_why():
    metrics = {"roc_auc": 0.9}
    measured = {
        "against": "v1",
        "max_psi": 0.4,
        "max_psi_feature": "balance",
        "max_unseen_share": 0.0,
        "max_unseen_feature": None,
    }
    gate = Gate(thresholds={"roc_auc": 0.8}, max_psi=0.25, max_unseen_share=0.001)
    passed, reasons = evaluate_gate(metrics, gate, None, measured)
    assert not passed
    assert "data drift: largest PSI 0.4000 (balance) > limit 0.2500 against v1's data" in reasons
    assert evaluate_gate(metrics, gate, None, measured | {"max_psi": 0.1})[0]
    # No limits in the spec: drift is reported, not gated.
    assert evaluate_gate(metrics, Gate(thresholds={"roc_auc": 0.8}), None, measured)[0]
    # A champion trained before profiles were recorded: said, not silently passed as measured.
    passed, reasons = evaluate_gate(metrics, gate, None, {"against": "v0", "note": "no profile"}, "v0")
    assert passed and reasons[0] == "drift not checked: no profile"
    # Measured against another version than today's champion (or before there was one): refused.
    passed, reasons = evaluate_gate(metrics, gate, None, measured | {"max_psi": 0.1}, "v2")
    assert not passed and "measured against v1, but v2 is champion now" in reasons[0]
    passed, reasons = evaluate_gate(metrics, gate, None, None, "v2")
    assert not passed and "measured when there was no champion, but v2" in reasons[0]


def test_profile_and_bins_from_spark(spark):
    frame = spark.createDataFrame(
        [(float(i), "a" if i % 4 else "b") for i in range(1, 101)] + [(None, None)], "age double, job string"
    )

    class Spec:
        features = ["age", "job"]
        columns = {"age": type("C", (), {"role": "numeric"}), "job": type("C", (), {"role": "categorical"})}

    found = drift.profile(frame, Spec())
    age = found["features"]["age"]
    assert found["rows"] == 101 and age["deciles"] == [float(x) for x in range(10, 100, 10)]
    # Ten equal bins of the 100 values, then the null.
    assert age["shares"] == pytest.approx([10 / 101] * 10 + [1 / 101])
    expected = {"a": 75 / 101, "b": 25 / 101, "(null)": 1 / 101}
    assert found["features"]["job"]["shares"] == pytest.approx(expected)


def test_category_shares_over_the_champions_categories(spark):
    frame = spark.createDataFrame([("a",)] * 6 + [("b",)] * 2 + [("x",)] * 1 + [(None,)], "job string")
    found = drift.category_shares(frame, "job", ["a", "b", "c"], 10)
    assert found["shares"] == pytest.approx({"a": 0.6, "b": 0.2, "(null)": 0.1, "(other)": 0.1})
    # Nulls are a share of their own, never an unseen category.
    assert found["outside"] == pytest.approx(0.1) and found["top"] == [("x", 0.1)]


@pytest.mark.spark
def test_a_version_trained_on_corrupted_categories_is_reported_and_not_promoted(trained_storage, tmp_path):
    root = copy_of(trained_storage, tmp_path)
    corrupted = tmp_path / "bank-mojibake.csv"
    with BANK.open(newline="") as src, corrupted.open("w", newline="", encoding="utf-8") as dst:
        rows = csv.reader(src, delimiter=";")
        writer = csv.writer(dst, delimiter=";", quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
        header = next(rows)
        writer.writerow(header)
        job = header.index("job")
        for i, row in enumerate(rows):
            if i < 300:  # what a wrong decoding upstream does to text: UTF-8 read as Latin-1, emoji
                row[job] = (row[job] + "é").encode().decode("latin-1") + ("\U0001f600" if i % 2 else "")
            writer.writerow(row)

    # A gate the metrics pass (300 of 4,521 rows cost a little PR AUC): only drift can refuse it.
    metrics_pass = ["--min-metric", "roc_auc=0.8", "--min-metric", "pr_auc=0.3", "--tolerance", "0.1"]
    code = train.main(train_args(corrupted, root, "--version", "mojibake", "--promote", *metrics_pass))

    assert code == 0  # trained and kept, for a person to look at
    registry = Registry(str(root), "bank-marketing")
    assert registry.champion()["version"] == TRAINED_VERSION
    measured = registry.manifest("mojibake")["drift"]
    assert measured["against"] == TRAINED_VERSION and measured["max_unseen_feature"] == "job"
    assert measured["max_unseen_share"] == pytest.approx(300 / 4521, abs=1e-4)
    assert any("Ã©" in c for c in measured["features"]["job"]["unseen"])
    assert measured["features"]["age"]["psi"] < 0.01  # untouched columns did not move
    decision = json.loads(storage.read_bytes(registry.decision_uri("mojibake")))
    assert not decision["promoted"]
    assert [r for r in decision["reasons"] if " < " in r or "more than" in r] == []  # metrics passed
    refused = "data drift: largest share of unseen categories 0.0664 (job) > limit 0.0010"
    assert any(r.startswith(refused) for r in decision["reasons"]), decision["reasons"]
    page = storage.read_bytes(storage.join(registry.version_uri("mojibake"), "report", "index.html")).decode()
    assert f"Data drift against {TRAINED_VERSION}" in page and "unseen categories 6.64%" in page
