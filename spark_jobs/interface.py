"""The typed link between the orchestration (dags/, plugins/) and the job package.

What each job CLI prints, as pydantic models: the job builds its answer as one of these and
prints it as JSON; the plugins parse it back into the same model (`Answer.parse`), so a field
renamed on one side fails loudly on the other instead of as a KeyError three tasks later. And
where a day's partition lives under the storage root, spelled once for the DAGs and the jobs.

Imports pydantic and the standard library only: DAG files and plugins import this module, and
no other part of spark_jobs, at module level (tests/test_interface.py keeps it so).
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationError

# -- where a day lives ----------------------------------------------------------------------------
# <root>/incoming/<model>/ds=<date>/   records to score; complete once MARKER is there
# <root>/scores/<model>/ds=<date>/     their scores, SUMMARY beside them, REJECTED rows apart

MARKER = "_SUCCESS"
SUMMARY = "_summary.json"
REJECTED = "_rejected"


def input_uri(root: str, model: str, date: str) -> str:
    return _day(root, "incoming", model, date)


def output_uri(root: str, model: str, date: str) -> str:
    return _day(root, "scores", model, date)


def _day(root: str, area: str, model: str, date: str) -> str:
    return "/".join([root.rstrip("/"), area, model, f"ds={date}"])


class AnswerError(ValueError):
    """A job printed something its model does not describe: the two sides are out of step."""


class Answer(BaseModel):
    """A job's answer: exactly these fields (an unknown one is refused, not dropped)."""

    # protected_namespaces: `model_version` is a field here, not pydantic's.
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    @classmethod
    def parse(cls, text: str) -> Self:
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            # Which fields and why, never their values: an answer may name where data lives. By
            # field name, so the message does not depend on the order pydantic checks them in.
            problems = sorted(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors())
            wrong = "; ".join(problems)
            raise AnswerError(f"the job's answer is not a {cls.__name__}: {wrong}") from None

    def show(self) -> str:
        """The one JSON line a job CLI prints."""
        return self.model_dump_json()


class Partition(Answer):
    """One model's day, as a run scores it: where it is read and written, and with what."""

    storage_root: str
    model: str
    date: str
    input_uri: str
    # The default partition is complete once its marker is there; a given input once it exists.
    ready_uri: str
    model_version: str = ""
    max_rejected_ratio: float
    output_uri: str
    summary_uri: str
    run_id: str

    @classmethod
    def of(
        cls, root: str, model: str, date: str, run_id: str, max_rejected_ratio: float,
        given_input: str | None = None, model_version: str = "",
    ) -> Partition:  # fmt: skip
        default, out = input_uri(root, model, date), output_uri(root, model, date)
        read = given_input or default
        return cls(
            storage_root=root, model=model, date=date, input_uri=read,
            ready_uri=f"{default}/{MARKER}" if read == default else read, model_version=model_version,
            max_rejected_ratio=max_rejected_ratio, output_uri=out, summary_uri=f"{out}/{SUMMARY}",
            run_id=run_id,
        )  # fmt: skip


class Shipped(Answer):
    """`package`: the job's code zip and entry point, and its packed Python environment."""

    code_uri: str
    entrypoint_uri: str
    code_digest: str
    environment_uri: str
    environment_digest: str


class LambdaPackage(Answer):
    """`lambda_package --find | --storage-root`: the shipped zip and what Lambda needs of it."""

    zip_uri: str
    code_sha256: str
    handler: str
    runtime: str


class InputChecked(Answer):
    """`contract`: the input passed the Spark-free checks."""

    uri: str
    files: int
    fingerprint: str


class GateUsed(Answer):
    thresholds: dict[str, float]
    primary_metric: str
    tolerance: float
    max_psi: float | None
    max_unseen_share: float | None


class Decision(Answer):
    """`registry promote`: whether the version became champion, and why."""

    model: str
    version: str
    promoted: bool
    reasons: list[str]
    gate: GateUsed | None = None  # absent when the version was champion already
    champion_before: str | None = None
    decided_at: str | None = None


class ChampionEvent(Answer):
    """What nightly_training's champion asset event carries to the DAGs that follow it."""

    date: str
    model: str
    champion: str
    promoted: bool
    version: str


class ShardPart(Answer):
    file: int  # index into the planned input's files
    row_groups: list[int] | None  # None: the whole file


class Shard(Answer):
    index: int
    count: int
    parts: list[ShardPart]
    rows: int  # estimated for CSV


class ShardPlan(Answer):
    """`shards plan`: a day's shards, for the model version and the input they were planned on."""

    model_version: str
    fingerprint: str
    shards: list[Shard]


class SmokeCheck(Answer):
    """`serving smoke`: an event the function must answer, and the answer it must give."""

    event: dict[str, Any]
    expected: dict[str, Any]


class ScoreSummary(Answer):
    """`score` and `shards commit`: a scored day, also written as SUMMARY beside its scores. Each
    engine adds its own counters (model loads, Arrow batches, shards) as further fields."""

    model_config = ConfigDict(extra="allow", frozen=True, protected_namespaces=())

    model: str
    model_version: str
    date: str
    run_id: str | None
    engine: str
    input: str
    input_format: str
    input_fingerprint: str
    output: str
    rows_in: int
    rows_scored: int
    rows_rejected: int
    rejected_ratio: float
    rejected_reasons: dict[str, int]
    rejected_output: str | None
    scored_at: str
    seconds: float
