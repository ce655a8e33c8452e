"""Any legal column name works: a spec names a data column that is not a plain name (dots, spaces,
brackets) through `source`, and columns passed through unscored keep whatever name they have."""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest
import yaml

from spark_jobs import storage
from spark_jobs.data.partitions import MARKER, input_uri, output_uri
from spark_jobs.errors import SpecError
from spark_jobs.scoring import score
from spark_jobs.spec import parse_spec
from spark_jobs.training import train
from tests.conftest import BANK, SPEC, train_args

# Data columns with names Spark would read as struct access, or that hold spaces and brackets.
RENAMED = {"balance": "bank balance (EUR)", "pdays": "p.days"}
EXTRA = "note.extra"


def _dotted_spec(tmp_path):
    doc = yaml.safe_load(SPEC.read_text())
    doc["name"] = "bank-dotted"
    for name, source in RENAMED.items():
        if source:
            doc["columns"][name]["source"] = source
    path = tmp_path / "dotted.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _dotted_rows():
    with BANK.open(newline="") as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    header = [RENAMED.get(h) or h for h in rows[0]] + [EXTRA]
    return header, [r + ["kept as is"] for r in rows[1:]]


def test_a_name_that_is_not_plain_is_refused_with_the_source_way_shown():
    text = SPEC.read_text().replace("  balance:", "  bank.balance:")
    with pytest.raises(
        SpecError, match=r"give its name in the data as source, e.g. bank_balance: \{source: 'bank.balance'"
    ):
        parse_spec(text)


@pytest.mark.spark
def test_dotted_and_spaced_columns_train_and_score_with_an_extra_dotted_column_kept(spark, tmp_path, capsys):
    spec = _dotted_spec(tmp_path)
    header, rows = _dotted_rows()
    data = tmp_path / "bank-dotted.csv"
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";").writerows([header, *rows])
    data.write_text(buffer.getvalue())
    root = tmp_path / "root"

    assert (
        train.main(
            train_args(data, root, "--version", "v1", "--promote", "--min-metric", "roc_auc=0.5", spec=spec)
        )
        == 0
    )

    # A day of records as Parquet, under the same names.
    day = input_uri(str(root), "bank-dotted", "2026-11-20")
    frame = pd.DataFrame(rows[:200], columns=header).drop(columns=["y"])
    for name in ("age", "bank balance (EUR)", "day", "duration", "campaign", "p.days", "previous"):
        frame[name] = frame[name].astype("int64")
    storage.write_bytes(storage.join(day, "part-0.parquet"), frame.to_parquet(index=False))
    storage.write_bytes(storage.join(day, MARKER), b"")
    capsys.readouterr()
    assert score.main(["--storage-root", str(root), "--model", "bank-dotted", "--date", "2026-11-20"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["rows_scored"], summary["rows_rejected"]) == (200, 0)
    scored = spark.read.parquet(storage.spark_uri(output_uri(str(root), "bank-dotted", "2026-11-20")))
    assert EXTRA in scored.columns and "balance" in scored.columns
    assert {r[0] for r in scored.select(f"`{EXTRA}`").collect()} == {"kept as is"}
