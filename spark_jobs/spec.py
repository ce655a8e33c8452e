"""Dataset spec: columns, types, roles, target, data contract and metric gate, read from YAML."""

from __future__ import annotations

import re
from typing import Literal

import fsspec
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from spark_jobs.errors import SpecError
from spark_jobs.locations import MODEL_NAME

ColumnType = Literal["string", "integer", "long", "double"]
NUMERIC_TYPES = ("integer", "long", "double")
# What metrics.evaluate reports and a gate may name.
GATE_METRICS = ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1")
# Spark reads dots in a column name as struct access and MLlib stages do not quote names.
_COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    type: ColumnType
    role: Literal["categorical", "numeric", "target", "ignore"]
    # The column's name in the data, when it is not a plain name (`emp.var.rate`, `Body Mass (g)`):
    # the jobs read it under this name and call it by the spec's.
    source: str | None = Field(default=None, min_length=1)
    min: float | None = None
    max: float | None = None
    max_null_ratio: float | None = Field(default=None, ge=0.0, le=1.0)


class CsvOptions(_Strict):
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    quote: str = Field(default='"', min_length=1, max_length=1)
    encoding: str = "utf-8"


class TargetSpec(_Strict):
    column: str
    positive: str
    negative: str


class ContractSpec(_Strict):
    min_rows: int = Field(default=1, ge=1)
    max_null_ratio: float = Field(default=0.0, ge=0.0, le=1.0)


class DriftLimits(_Strict):
    """How far a new version's training data may be from its champion's (spark_jobs.training.drift)."""

    # Population stability index of any one feature; 0.1 is a small shift, 0.25 a large one.
    max_psi: float | None = Field(default=None, gt=0.0)
    # Share of rows whose category (in any one feature) the champion's data never had.
    max_unseen_share: float | None = Field(default=None, ge=0.0, le=1.0)


class GateSpec(_Strict):
    thresholds: dict[str, float] = Field(default_factory=dict)
    primary_metric: str = "roc_auc"
    tolerance: float = Field(default=0.0, ge=0.0)
    drift: DriftLimits = Field(default_factory=DriftLimits)

    @model_validator(mode="after")
    def _known_metrics(self) -> GateSpec:
        check_metric_names([*self.thresholds, self.primary_metric])
        return self


def check_metric_names(names: list[str]) -> None:
    unknown = [n for n in names if n not in GATE_METRICS]
    if unknown:
        raise ValueError(
            f"unknown metric(s) {', '.join(map(repr, unknown))}; known: {', '.join(GATE_METRICS)}"
        )


class ServingSpec(_Strict):
    """How spot predictions treat a value far outside what the model was trained on: the range
    seen in training, widened by `range_margin` times its span on each side."""

    outside_training_range: Literal["flag", "refuse"] = "flag"
    range_margin: float = Field(default=1.0, ge=0.0)


class DatasetSpec(_Strict):
    # A model name (spark_jobs.locations.MODEL_NAME): it names the registry folder and the function.
    name: str = Field(pattern=MODEL_NAME.pattern)
    description: str = ""
    format: Literal["csv", "parquet"] = "csv"
    csv: CsvOptions = CsvOptions()
    target: TargetSpec
    columns: dict[str, ColumnSpec]
    contract: ContractSpec = ContractSpec()
    gate: GateSpec = GateSpec()
    serving: ServingSpec = ServingSpec()

    @model_validator(mode="after")
    def _consistent(self) -> DatasetSpec:
        target = self.columns.get(self.target.column)
        if target is None or target.role != "target":
            raise ValueError(f"target column {self.target.column!r} must be a column with role: target")
        if [n for n, c in self.columns.items() if c.role == "target"] != [self.target.column]:
            raise ValueError("exactly one column must have role: target")
        if self.target.positive == self.target.negative:
            raise ValueError("target.positive and target.negative must differ")
        if not self.features:
            raise ValueError("no feature columns: give at least one column role categorical or numeric")
        sources = [col.source or name for name, col in self.columns.items()]
        if len(set(sources)) != len(sources):
            raise ValueError("two columns read the same source column")
        for name, col in self.columns.items():
            if not _COLUMN_NAME.match(name):
                plain = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "col"
                raise ValueError(
                    f"column {name!r}: a spec's names hold letters, digits and '_' only; for a data "
                    "column named otherwise, name it plainly and give its name in the data as source, "
                    f"e.g. {plain}: {{source: {name!r}, ...}}"
                )
            if col.role == "categorical" and col.type != "string":
                raise ValueError(
                    f"column {name!r}: role categorical needs type string (codes such as 1, 2 are "
                    "categories as text)"
                )
            if col.role == "numeric" and col.type not in NUMERIC_TYPES:
                raise ValueError(f"column {name!r}: role numeric needs a numeric type, not {col.type}")
            if (col.min is not None or col.max is not None) and col.type not in NUMERIC_TYPES:
                raise ValueError(f"column {name!r}: min/max apply to numeric types only")
        return self

    @property
    def categorical(self) -> list[str]:
        return [n for n, c in self.columns.items() if c.role == "categorical"]

    @property
    def numeric(self) -> list[str]:
        return [n for n, c in self.columns.items() if c.role == "numeric"]

    @property
    def features(self) -> list[str]:
        return [n for n, c in self.columns.items() if c.role in ("categorical", "numeric")]

    def source(self, column: str) -> str:
        """A column's name in the data."""
        return self.columns[column].source or column

    def max_null_ratio(self, column: str) -> float:
        """Allowed share of nulls in a column; the target may never be null."""
        if column == self.target.column:
            return 0.0
        own = self.columns[column].max_null_ratio
        return self.contract.max_null_ratio if own is None else own


def parse_spec(text: str, source: str = "<spec>") -> DatasetSpec:
    """Parse and validate spec YAML, raising SpecError with the offending field named."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"spec {source} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"spec {source} must be a YAML mapping")
    try:
        return DatasetSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise SpecError(f"spec {source} is invalid: {problems}") from None


def load_spec(uri: str) -> DatasetSpec:
    """Read a spec from a local path or any fsspec URI."""
    try:
        with fsspec.open(uri, "rt", encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise SpecError(f"spec file not found: {uri}") from None
    return parse_spec(text, uri)
