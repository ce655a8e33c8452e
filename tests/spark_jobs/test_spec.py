from __future__ import annotations

import pytest
import yaml

from spark_jobs.errors import SpecError
from spark_jobs.spec import load_spec, parse_spec
from tests.conftest import SPEC


def _bank_with(**changes) -> str:
    doc = yaml.safe_load(SPEC.read_text())
    for dotted, value in changes.items():
        node = doc
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node[key]
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value
    return yaml.safe_dump(doc)


def test_bank_spec_declares_roles_and_target(bank_spec):
    assert bank_spec.target.column == "y"
    assert bank_spec.target.positive == "yes"
    assert "job" in bank_spec.categorical and "balance" in bank_spec.numeric
    assert len(bank_spec.features) == 16
    assert "y" not in bank_spec.features


def test_ignored_columns_are_not_features():
    spec = parse_spec(_bank_with(columns__duration={"type": "integer", "role": "ignore"}))
    assert "duration" not in spec.features and "duration" in spec.columns


def test_null_ratio_falls_back_to_contract_default_and_target_is_never_null():
    spec = parse_spec(
        _bank_with(
            columns__balance={"type": "integer", "role": "numeric", "max_null_ratio": 0.1},
            contract__max_null_ratio=0.02,
        )
    )
    assert spec.max_null_ratio("balance") == 0.1
    assert spec.max_null_ratio("age") == 0.02
    assert spec.max_null_ratio("y") == 0.0


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"target__column": "nope"}, "target column 'nope'"),
        ({"columns__job": {"type": "string", "role": "numeric"}}, "role numeric needs a numeric type"),
        ({"columns__job": {"type": "text", "role": "categorical"}}, "columns.job.type"),
        ({"columns__age": {"type": "integer", "role": "numeric", "colour": 1}}, "colour"),
        ({"target__positive": "no"}, "must differ"),
        ({"name": "Bank Marketing!"}, "name"),
        ({"csv__delimiter": ";;"}, "csv.delimiter"),
    ],
    ids=[
        "target-not-a-column",
        "numeric-role-on-string",
        "unknown-type",
        "unknown-key",
        "same-labels",
        "bad-name",
        "long-delimiter",
    ],
)
def test_invalid_spec_is_refused_naming_the_field(changes, expected):
    with pytest.raises(SpecError, match="invalid") as err:
        parse_spec(_bank_with(**changes))
    assert expected in str(err.value)


def test_spec_that_is_not_yaml_or_missing_says_so(tmp_path):
    with pytest.raises(SpecError, match="not valid YAML"):
        parse_spec("columns: [unclosed")
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(str(tmp_path / "missing.yaml"))
