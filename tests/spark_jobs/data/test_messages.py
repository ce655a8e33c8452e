"""Messages a person can act on: each names the file and the fix, stays short, and a failure that
a retry would repeat is not retried."""

from __future__ import annotations

import gzip
import shutil

import pytest

from spark_jobs.data.contract import inspect_input, read_checked
from spark_jobs.errors import DataContractError
from tests.conftest import BANK, SPEC

HEADER, *ROWS = BANK.read_text().splitlines(keepends=True)


@pytest.mark.spark
def test_a_corrupt_part_beside_a_good_one_is_named(spark, tmp_path, bank_spec):
    import pandas as pd

    folder = tmp_path / "day"
    folder.mkdir()
    pd.read_csv(BANK, sep=";").to_parquet(folder / "part-00000.parquet")
    (folder / "part-00001.parquet").write_bytes(b"PAR1 this is not parquet PAR1")
    inp = inspect_input(str(folder), bank_spec, fmt="parquet")
    with pytest.raises(DataContractError) as refused:
        read_checked(spark, inp, bank_spec)
    message = str(refused.value)
    assert "part-00001.parquet" in message and "An error occurred while calling" not in message, message


@pytest.mark.spark
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_a_byte_order_mark_is_read_with_utf8_and_utf8_sig(spark, tmp_path, bank_spec, encoding):
    data = tmp_path / "bom.csv"
    data.write_bytes("\ufeff".encode() + BANK.read_bytes())
    spec = bank_spec.model_copy(update={"csv": bank_spec.csv.model_copy(update={"encoding": encoding})})
    assert read_checked(spark, inspect_input(str(data), spec), spec).count() == len(ROWS)


def test_gzip_named_csv_is_told_to_be_renamed(tmp_path, bank_spec):
    data = tmp_path / "bank.csv"
    with open(BANK, "rb") as src, gzip.open(data, "wb") as dst:
        shutil.copyfileobj(src, dst)
    with pytest.raises(
        DataContractError,
        match=r"gzip-compressed but its name does not end in .gz: rename it \(bank.csv.gz\)",
    ):
        inspect_input(str(data), bank_spec)


def test_ten_thousand_stray_columns_give_a_short_message(tmp_path, bank_spec):
    data = tmp_path / "wide.csv"
    names = [f"garbage_column_{i}" for i in range(10_000)]
    data.write_text(";".join(names) + "\n" + ";".join("x" for _ in names) + "\n")
    with pytest.raises(DataContractError) as refused:
        inspect_input(str(data), bank_spec)
    assert "its header has 10000 field(s)" in str(refused.value) and len(str(refused.value)) < 600


@pytest.mark.spark
def test_extra_columns_are_named_in_a_warning_and_not_carried(spark, tmp_path, bank_spec, caplog):
    data = tmp_path / "extra.csv"
    extra = [f"x{i}" for i in range(300)]
    lines = [HEADER.rstrip("\n") + ";" + ";".join(extra)] + [
        r.rstrip("\n") + ";" + ";".join("0" for _ in extra) for r in ROWS
    ]
    data.write_text("\n".join(lines) + "\n")
    with caplog.at_level("WARNING", logger="spark_jobs.data.contract"):
        typed = read_checked(spark, inspect_input(str(data), bank_spec), bank_spec)
    assert typed.columns == list(bank_spec.columns)
    assert any("300 column(s)" in r.getMessage() and "are ignored" in r.getMessage() for r in caplog.records)


def test_a_refused_input_is_not_retried(tmp_path):
    from airflow.providers.common.compat.sdk import AirflowFailException
    from scaling_platform.jobs import JobFailed, JobRefused, run_job

    from spark_jobs.interface import Decision, InputChecked

    bad = tmp_path / "bad.csv"
    bad.write_text("a;b\n1;2\n")
    with pytest.raises(JobRefused) as refused:
        run_job("contract", "--input", str(bad), "--spec", str(SPEC), answer=InputChecked)
    assert isinstance(refused.value, AirflowFailException) and "missing column(s)" in str(refused.value)
    with pytest.raises(JobFailed) as other:  # a registry problem (exit 4) may be retried
        run_job(
            "registry",
            "promote",
            "--storage-root",
            str(tmp_path),
            "--spec",
            str(SPEC),
            "--version",
            "v9",
            answer=Decision,
        )
    assert not isinstance(other.value, AirflowFailException)
