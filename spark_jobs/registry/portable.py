"""Portable model: the fitted Spark pipeline as JSON parameters, loaded as a scikit-learn estimator.

The export is data, not code (no pickle): imputation means, scaler mean and std, category
lists and logistic-regression weights. Loading rebuilds the equivalent scikit-learn Pipeline,
so Lambda and pods predict without a JVM. `export_pipeline` needs the fitted Spark model;
everything else here imports neither pyspark nor Spark.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FORMAT = "ml-scaling/portable-logistic-regression"
FORMAT_VERSION = 1


def export_pipeline(model: Any, spec: Any) -> dict[str, Any]:
    """Read the parameters of a pipeline built by features.build_pipeline into a JSON-able dict."""
    stages = {type(s).__name__: s for s in model.stages}
    lr = stages["LogisticRegressionModel"]
    if lr.numClasses != 2:
        raise ValueError("the portable export supports binary logistic regression only")
    weights = [float(w) for w in lr.coefficients.toArray()]

    numeric: list[dict[str, Any]] = []
    if spec.numeric:
        imputer, scaler = stages["ImputerModel"], stages["StandardScalerModel"]
        surrogates = imputer.surrogateDF.first().asDict()
        means, stds = scaler.mean.toArray(), scaler.std.toArray()
        for i, name in enumerate(spec.numeric):
            # Spark scales a constant column to 0; a zero weight gives the same contribution
            # whatever scikit-learn does with it.
            weight = weights[i] if stds[i] > 0 else 0.0
            numeric.append(
                {
                    "name": name,
                    "impute": float(surrogates[f"{name}__double"]),
                    "mean": float(means[i]),
                    "std": float(stds[i]),
                    "weight": weight,
                }
            )
    offset = len(numeric)
    categorical: list[dict[str, Any]] = []
    if spec.categorical:
        for name, labels in zip(spec.categorical, stages["StringIndexerModel"].labelsArray, strict=True):
            categorical.append(
                {"name": name, "categories": list(labels), "weights": weights[offset : offset + len(labels)]}
            )
            offset += len(labels)
    if offset != len(weights):
        raise ValueError(f"feature layout mismatch: {offset} mapped, {len(weights)} weights")
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dataset": spec.name,
        "target": spec.target.model_dump(),
        "numeric": numeric,
        "categorical": categorical,
        "intercept": float(lr.intercept),
    }


def checked_format(doc: Any) -> dict[str, Any]:
    """`doc` if it is a portable model this code can read."""
    if (
        not isinstance(doc, dict)
        or doc.get("format") != FORMAT
        or doc.get("format_version") != FORMAT_VERSION
    ):
        found = (
            f"{doc.get('format')} v{doc.get('format_version')}"
            if isinstance(doc, dict)
            else type(doc).__name__
        )
        raise ValueError(f"not a portable model of format {FORMAT} v{FORMAT_VERSION}: {found}")
    return doc


@dataclass(frozen=True)
class PortableModel:
    """A portable export and the scikit-learn estimator built from it."""

    doc: dict[str, Any]
    estimator: Any

    @classmethod
    def from_bytes(cls, data: bytes) -> PortableModel:
        doc = checked_format(json.loads(data))
        return cls(doc=doc, estimator=to_sklearn(doc))

    @property
    def features(self) -> list[str]:
        return [c["name"] for c in self.doc["numeric"]] + [c["name"] for c in self.doc["categorical"]]

    def frame(self, rows: Any) -> Any:
        """Records (mappings) or a DataFrame as the typed pandas frame the estimator expects."""
        import pandas as pd

        df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame.from_records(list(rows))
        missing = [f for f in self.features if f not in df.columns]
        if missing:
            raise ValueError(f"missing feature column(s): {', '.join(missing)}")
        out = pd.DataFrame(index=df.index)
        for col in self.doc["numeric"]:
            out[col["name"]] = pd.to_numeric(df[col["name"]], errors="raise").astype("float64")
        for col in self.doc["categorical"]:
            # Categories are text (the spec requires it); a caller's 1 must match category "1".
            values = df[col["name"]].astype("object")
            out[col["name"]] = values.where(values.isna(), values.astype(str))
        return out

    def predict_proba(self, rows: Any) -> Any:
        """Probability of the positive class for each row, as a numpy array."""
        return self.estimator.predict_proba(self.frame(rows))[:, 1]


def to_sklearn(doc: Mapping[str, Any]) -> Any:
    """Build a fitted scikit-learn Pipeline that computes what the Spark pipeline computes."""
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric, categorical = doc["numeric"], doc["categorical"]
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        steps = [("impute", SimpleImputer(strategy="mean")), ("scale", StandardScaler())]
        transformers.append(("numeric", Pipeline(steps), [c["name"] for c in numeric]))
    if categorical:
        encoder = OneHotEncoder(
            categories=[c["categories"] for c in categorical],
            handle_unknown="ignore",  # unknown and missing values: all zeros, as in Spark
            sparse_output=False,
        )
        transformers.append(("categorical", encoder, [c["name"] for c in categorical]))
    pipeline = Pipeline([("features", ColumnTransformer(transformers)), ("classifier", LogisticRegression())])

    # Fit on a tiny frame holding every category so scikit-learn sets up its fitted state,
    # then replace every learned parameter with Spark's.
    negative, positive = doc["target"]["negative"], doc["target"]["positive"]
    n = max([2, *(len(c["categories"]) for c in categorical)])
    synthetic = pd.DataFrame(
        {c["name"]: [float(i) for i in range(n)] for c in numeric}
        | {c["name"]: [c["categories"][i % len(c["categories"])] for i in range(n)] for c in categorical}
    )
    pipeline.fit(synthetic, [negative if i % 2 == 0 else positive for i in range(n)])

    features = pipeline.named_steps["features"]
    weights: list[float] = []
    if numeric:
        imputer, scaler = features.named_transformers_["numeric"].named_steps.values()
        imputer.statistics_ = np.array([c["impute"] for c in numeric], dtype=float)
        std = np.array([c["std"] for c in numeric], dtype=float)
        scaler.mean_ = np.array([c["mean"] for c in numeric], dtype=float)
        scaler.scale_ = np.where(std > 0, std, 1.0)
        scaler.var_ = scaler.scale_**2
        weights += [c["weight"] for c in numeric]
    for c in categorical:
        weights += c["weights"]
    classifier = pipeline.named_steps["classifier"]
    classifier.coef_ = np.array([weights], dtype=float)
    classifier.intercept_ = np.array([doc["intercept"]], dtype=float)
    classifier.classes_ = np.array([negative, positive], dtype=object)
    if not all(math.isfinite(w) for w in weights):
        raise ValueError("portable model has non-finite weights")
    return pipeline


class Scorer:
    """The portable model as plain Python arithmetic: what Spark computes for a row, without
    numpy, pandas or scikit-learn, so a Lambda container needs none of them to start.

    Rows are mappings already checked against the dataset spec (numbers for numeric features,
    text or None for categorical ones); None is imputed or encoded the way Spark does.
    """

    def __init__(self, doc: Mapping[str, Any]):
        self.doc = checked_format(doc)
        self._numeric = [(c["name"], c["impute"], c["mean"], c["std"], c["weight"]) for c in doc["numeric"]]
        # An unknown or missing category has no entry: all zeros, as Spark's dropLast bucket.
        self._categorical = [
            (c["name"], dict(zip(c["categories"], c["weights"], strict=True))) for c in doc["categorical"]
        ]
        self._intercept = float(doc["intercept"])
        self.positive, self.negative = doc["target"]["positive"], doc["target"]["negative"]

    def margin(self, row: Mapping[str, Any]) -> float:
        # Spark: dot(weights, [scaled numerics..., one-hot blocks...]) + intercept, in that order.
        total = 0.0
        for name, impute, mean, std, weight in self._numeric:
            value = row.get(name)
            x = impute if value is None else float(value)
            total += weight * ((x - mean) / std if std > 0 else 0.0)
        for name, weights in self._categorical:
            total += weights.get(row.get(name), 0.0)
        return total + self._intercept

    def probability(self, row: Mapping[str, Any]) -> float:
        """Probability of the positive class, computed as Spark's LogisticRegressionModel does."""
        try:
            return 1.0 / (1.0 + math.exp(-self.margin(row)))
        except OverflowError:  # margin below about -709
            return 0.0

    def probabilities(self, frame: Any) -> Any:
        """`probability` for every row of a pandas DataFrame at once, as a numpy array: the same
        arithmetic, vectorised, for batch scoring (this method alone needs numpy and pandas)."""
        import numpy as np

        numeric = [frame[c[0]].to_numpy(dtype="float64", na_value=np.nan) for c in self._numeric]
        categorical = [
            frame[name].map(weights).to_numpy(dtype="float64", na_value=0.0)
            for name, weights in self._categorical
        ]
        return self._vector_probabilities(len(frame), numeric, categorical)

    def arrow_probabilities(self, columns: Mapping[str, Any]) -> Any:
        """`probabilities` for typed Arrow arrays by feature name (numbers, and text for the
        categories), as a numpy array: what `probabilities` gives for the same values."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        numeric = [
            np.asarray(pc.cast(columns[c[0]], pa.float64()).to_numpy(zero_copy_only=False))
            for c in self._numeric
        ]
        categorical = []
        for name, weights in self._categorical:
            # An unknown or missing category: the extra last weight, 0.
            table = np.array([*weights.values(), 0.0])
            found = pc.index_in(columns[name], value_set=pa.array(list(weights), pa.string()))
            categorical.append(table[pc.fill_null(found, len(weights)).to_numpy()])
        size = len(next(iter(columns.values()))) if columns else 0
        return self._vector_probabilities(size, numeric, categorical)

    def _vector_probabilities(self, size: int, numeric: list[Any], categorical: list[Any]) -> Any:
        import numpy as np

        margin = np.full(size, self._intercept)
        for (_, impute, mean, std, weight), x in zip(self._numeric, numeric, strict=True):
            if std > 0:
                margin += weight * ((np.where(np.isnan(x), impute, x) - mean) / std)
        for weights in categorical:
            margin += weights
        with np.errstate(over="ignore"):  # exp overflows to inf for margins below about -709: p = 0
            return 1.0 / (1.0 + np.exp(-margin))

    def labels(self, probabilities: Any) -> Any:
        """`label` for a numpy array of probabilities."""
        import numpy as np

        return np.where(probabilities > 0.5, self.positive, self.negative)

    def label(self, probability: float) -> str:
        # Spark's default threshold: positive only when strictly above 0.5.
        return str(self.positive if probability > 0.5 else self.negative)
