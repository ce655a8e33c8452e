"""The Spark-free first stage of the contract: finding, fingerprinting and header checks."""

from __future__ import annotations

import gzip

import pytest

from spark_jobs.data.contract import inspect_input
from spark_jobs.errors import DataContractError
from tests.conftest import BANK

TEXT = BANK.read_text()


def test_fingerprint_follows_content_not_location(tmp_path, bank_spec):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "bank.csv").write_text(TEXT)
    (b / "bank.csv").write_text(TEXT)
    assert (
        inspect_input(str(a / "bank.csv"), bank_spec).fingerprint
        == inspect_input(str(b / "bank.csv"), bank_spec).fingerprint
    )
    (b / "bank.csv").write_text(TEXT.replace(";1787;", ";1788;", 1))
    assert (
        inspect_input(str(a / "bank.csv"), bank_spec).fingerprint
        != inspect_input(str(b / "bank.csv"), bank_spec).fingerprint
    )


def test_folder_of_parts_skips_spark_markers(tmp_path, bank_spec):
    lines = TEXT.splitlines(keepends=True)
    (tmp_path / "part-0.csv").write_text("".join(lines[:2000]))
    (tmp_path / "part-1.csv").write_text(lines[0] + "".join(lines[2000:]))
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / ".part-0.csv.crc").write_text("x")
    inp = inspect_input(str(tmp_path), bank_spec)
    assert [f.rsplit("/", 1)[-1] for f in inp.files] == ["part-0.csv", "part-1.csv"]
    assert inspect_input(str(tmp_path / "part-*.csv"), bank_spec).files == inp.files
    assert inspect_input(str(tmp_path / "*"), bank_spec).files == inp.files  # markers skipped


def test_the_callers_scheme_is_kept_for_spark(bank_spec):
    import fsspec

    fsspec.filesystem("memory").pipe("/inputs/bank.csv", TEXT.encode())
    inp = inspect_input("memory://inputs/bank.csv", bank_spec)
    assert inp.files == ("memory://inputs/bank.csv",)


def test_compressed_csv_header_is_read(tmp_path, bank_spec):
    path = tmp_path / "bank.csv.gz"
    path.write_bytes(gzip.compress(TEXT.encode()))
    assert inspect_input(str(path), bank_spec).header[0] == "age"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "holds no data files"),
        (lambda p: None, "input not found"),
    ],
    ids=["empty-folder", "missing"],
)
def test_nothing_to_read_is_named(tmp_path, bank_spec, make, message):
    target = tmp_path / "in"
    make(target)
    with pytest.raises(DataContractError, match=message):
        inspect_input(str(target), bank_spec)
    with pytest.raises(DataContractError, match="matches no files"):
        inspect_input(str(tmp_path / "*.parquet"), bank_spec)
