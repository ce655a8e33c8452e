"""The typed link: what the jobs print is what the plugins parse, and the DAG side stays light."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from spark_jobs.interface import Answer, AnswerError, Decision, InputChecked, Partition, ShardPlan
from tests.conftest import ROOT

SPEC = ROOT / "specs" / "bank_marketing.yaml"
BANK = ROOT / "data" / "bank" / "bank.csv"


def test_dags_and_plugins_import_only_the_interface_of_the_job_package_at_module_level():
    found = {}
    for path in [*(ROOT / "dags").glob("*.py"), *(ROOT / "plugins").rglob("*.py")]:
        for node in ast.parse(path.read_text()).body:  # module level only: tasks may import more
            names = (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            )  # fmt: skip
            found.update({(path.name, n): n for n in names if n.startswith("spark_jobs")})
    assert found and set(found.values()) == {"spark_jobs.interface"}, found


def test_dag_files_assemble_no_command_line_and_spell_no_partition_path():
    for path in (ROOT / "dags").glob("*.py"):
        nodes = list(ast.walk(ast.parse(path.read_text())))
        texts = [n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        assert not [t for t in texts if t.startswith("--")], path.name  # options are scaling_platform.jobs'
        # A path built in a DAG file (an f-string), not a description of one: spark_jobs.interface's.
        built = [ast.unparse(n) for n in nodes if isinstance(n, ast.JoinedStr)]
        assert not [b for b in built if "ds=" in b or "/incoming/" in b or "/scores/" in b], path.name


def test_the_interface_loads_nothing_but_pydantic_and_the_standard_library():
    code = (
        "import sys; before = set(sys.modules); import spark_jobs.interface; "
        "print(*sorted({m.split('.')[0] for m in set(sys.modules) - before}))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    heavy = {"fsspec", "yaml", "pyspark", "pandas", "numpy", "pyarrow", "botocore", "s3fs", "sklearn"}
    assert "pydantic" in loaded and not loaded & heavy, loaded


def test_a_jobs_answer_is_parsed_into_its_model_and_a_mismatch_fails_for_good():
    from scaling_platform.jobs import JobRefused, check_input, run_job

    checked = check_input(str(BANK), str(SPEC))
    assert (
        isinstance(checked, InputChecked) and checked.files == 1 and checked.fingerprint.startswith("sha256:")
    )
    # The same answer read as another job's: the two sides are out of step, and a retry would
    # give the same, so the task fails for good with what did not match.
    with pytest.raises(
        JobRefused,
        match=r"not a ShardPlan: files: Extra inputs are not permitted; model_version: Field required; "
        r".*uri: Extra",
    ) as out:
        run_job("contract", "--input", str(BANK), "--spec", str(SPEC), answer=ShardPlan)
    assert "sha256:" not in str(out.value) and str(BANK) not in str(out.value)  # fields, not values


def test_an_answer_with_an_unknown_or_missing_field_is_refused_not_dropped():
    good = '{"uri": "s3://b/k", "files": 2, "fingerprint": "ab"}'
    assert InputChecked.parse(good).files == 2
    with pytest.raises(AnswerError, match="renamed_field"):
        InputChecked.parse(good[:-1] + ', "renamed_field": 1}')
    with pytest.raises(AnswerError, match="promoted"):
        Decision.parse('{"model": "m", "version": "v", "reasons": []}')
    assert issubclass(Decision, Answer)


@pytest.mark.parametrize("root", ["s3://bucket/ml", "/srv/storage"])
def test_a_partition_is_where_the_scoring_job_reads_and_writes(root):
    from spark_jobs.data.partitions import MARKER, input_uri, output_uri
    from spark_jobs.scoring.score import SUMMARY

    day = Partition.of(root, "bank-marketing", "2026-11-20", "r1", 0.01)
    assert day.input_uri == input_uri(root, "bank-marketing", "2026-11-20")
    assert day.output_uri == output_uri(root, "bank-marketing", "2026-11-20")
    assert (day.ready_uri, day.summary_uri) == (f"{day.input_uri}/{MARKER}", f"{day.output_uri}/{SUMMARY}")
    # A given input is ready once it exists: it has no marker of ours.
    given = Partition.of(root, "bank-marketing", "2026-11-20", "r1", 0.01, given_input="s3://other/x.csv")
    assert given.input_uri == given.ready_uri == "s3://other/x.csv"
