"""Bad input gets one clear message, a non-zero exit, and leaves the registry as it was."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from spark_jobs.errors import DataContractError
from spark_jobs.registry.store import Registry
from spark_jobs.training import train
from tests.conftest import BANK, ROOT, train_args

LINES = BANK.read_text().splitlines(keepends=True)
HEADER, ROWS = LINES[0], LINES[1:]


def _replace_field(line: str, index: int, value: str) -> str:
    fields = line.rstrip("\n").split(";")
    fields[index] = value
    return ";".join(fields) + "\n"


def _bank(**edits: str) -> str:
    """bank.csv with field `name` of row 100 set to a value."""
    names = [h.strip('"') for h in HEADER.strip().split(";")]
    rows = list(ROWS)
    for name, value in edits.items():
        rows[100] = _replace_field(rows[100], names.index(name), value)
    return HEADER + "".join(rows)


BAD_INPUTS = {
    # name: (file content or None for no file, expected message fragment)
    "missing-file": (None, "input not found"),
    "empty-file": ("", "is empty"),
    "header-only": (HEADER, "has a header but no data rows"),
    "missing-column": (
        "".join(
            ";".join(line.rstrip("\n").split(";")[:5] + line.rstrip("\n").split(";")[6:]) + "\n"
            for line in LINES
        ),
        "missing column(s) 'balance'",
    ),
    "unparseable-values": (
        _bank(balance="12k"),
        "column 'balance': 1 value(s) are not an integer, e.g. '12k'",
    ),
    "fraction-in-integer-column": (_bank(age="41.5"), "column 'age': 1 value(s) are not an integer"),
    "unknown-target-value": (
        _bank(y='"maybe"'),
        "target column 'y' has value(s) other than ['no', 'yes'], e.g. 'maybe'",
    ),
    "wrong-delimiter": ("".join(line.replace(";", ",") for line in LINES), "looks ','-delimited"),
    "row-with-missing-fields": (
        HEADER + "".join(ROWS[:50]) + '30;"admin."\n' + "".join(ROWS[50:]),
        "1 row(s) do not split into 17 fields",
    ),
    "null-values": (_bank(job=""), "column 'job': 1 of 4521 value(s) are missing"),
    "out-of-range": (_bank(age="200"), "column 'age' fails less_than_or_equal_to(130.0)"),
    "too-few-rows": (HEADER + "".join(ROWS[:20]), "only 20 row(s); the spec requires at least 1000"),
    "not-utf8": (HEADER.encode() + '30;"gerente\xe9"\n'.encode("latin-1"), "is not utf-8 text"),
    "not-utf8-deep-in-the-file": (
        (HEADER + "".join(ROWS[:3000])).encode()
        + ROWS[3000].replace('"no"', '"n\xe3o"', 1).encode("latin-1")
        + "".join(ROWS[3001:]).encode(),
        "value(s) are not valid utf-8 text",
    ),
}


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def registry_with_champion(spark, tmp_path_factory, bank_spec):
    """A registry that already has a champion, trained on bank.csv in this process."""
    root = tmp_path_factory.mktemp("registry")
    code = train.main(
        train_args(BANK, root, "--promote", "--min-metric", "roc_auc=0.8", "--version", "champion-v1")
    )
    assert code == 0
    assert Registry(str(root), bank_spec.name).champion()["version"] == "champion-v1"
    return root


@pytest.mark.spark
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_fails_clearly_and_loses_nothing(case, registry_with_champion, tmp_path, capsys):
    content, expected = BAD_INPUTS[case]
    path = tmp_path / "input.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    before = _snapshot(registry_with_champion)

    code = train.main(train_args(path, registry_with_champion, "--promote"))

    err = capsys.readouterr().err
    assert code == DataContractError.exit_code
    assert expected in err
    assert "Traceback" not in err
    assert _snapshot(registry_with_champion) == before


def test_cli_exits_non_zero_with_the_message_only(tmp_path):
    """The real command, as EMR and pods run it: exit code and one line on stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "spark_jobs", "train", *train_args(tmp_path / "nope.csv", tmp_path / "root")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == DataContractError.exit_code
    assert proc.stderr.strip() == f"error: input not found: {tmp_path / 'nope.csv'}"
    assert not (tmp_path / "root").exists()
