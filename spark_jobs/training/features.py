"""The MLlib pipeline the spec implies, and the pure DataFrame transforms around it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spark_jobs.spec import DatasetSpec

LABEL = "label"
FEATURES = "features"
PROBABILITY = "probability"
P_POSITIVE = "p_positive"


@dataclass(frozen=True)
class TrainParams:
    """Estimator settings; the defaults are what the bank benchmark was measured with."""

    seed: int = 42
    test_fraction: float = 0.2
    max_iter: int = 100
    reg_param: float = 0.001
    elastic_net_param: float = 0.0


def with_label(df: Any, spec: DatasetSpec) -> Any:
    """Add a 0/1 `label` column: 1.0 where the target is the spec's positive value."""
    from pyspark.sql import functions as F

    target = F.col(spec.target.column)
    return df.withColumn(LABEL, F.when(target == spec.target.positive, 1.0).otherwise(0.0))


def split(df: Any, params: TrainParams) -> tuple[Any, Any]:
    """Seeded train/test split; the same input and seed give the same split."""
    train, test = df.randomSplit([1.0 - params.test_fraction, params.test_fraction], seed=params.seed)
    return train, test


def build_pipeline(spec: DatasetSpec, params: TrainParams) -> Any:
    """Index and one-hot the categoricals, impute and scale the numerics, logistic regression.

    Unknown or missing categories map to an all-zero one-hot block (StringIndexer 'keep' plus
    OneHotEncoder dropLast drops exactly that bucket), so scoring never fails on a new value;
    the portable export relies on this layout.
    """
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import (
        Imputer,
        OneHotEncoder,
        SQLTransformer,
        StandardScaler,
        StringIndexer,
        VectorAssembler,
    )

    cats, nums = spec.categorical, spec.numeric
    stages: list[Any] = []
    assembled: list[str] = []
    if nums:
        doubles = [f"{c}__double" for c in nums]
        imputed = [f"{c}__imputed" for c in nums]
        casts = ", ".join(f"CAST(`{c}` AS DOUBLE) AS `{d}`" for c, d in zip(nums, doubles, strict=True))
        stages += [
            # Imputer casts its output back to the input type, which would truncate the mean
            # imputed into an integer column; impute in doubles instead.
            SQLTransformer(statement=f"SELECT *, {casts} FROM __THIS__"),
            Imputer(inputCols=doubles, outputCols=imputed, strategy="mean"),
            VectorAssembler(inputCols=imputed, outputCol="numeric__raw"),
            StandardScaler(inputCol="numeric__raw", outputCol="numeric__scaled", withMean=True, withStd=True),
        ]
        assembled.append("numeric__scaled")
    if cats:
        indexed = [f"{c}__index" for c in cats]
        encoded = [f"{c}__onehot" for c in cats]
        stages += [
            StringIndexer(
                inputCols=cats, outputCols=indexed, handleInvalid="keep", stringOrderType="alphabetAsc"
            ),
            OneHotEncoder(inputCols=indexed, outputCols=encoded, dropLast=True),
        ]
        assembled += encoded
    stages += [
        VectorAssembler(inputCols=assembled, outputCol=FEATURES),
        LogisticRegression(
            featuresCol=FEATURES,
            labelCol=LABEL,
            maxIter=params.max_iter,
            regParam=params.reg_param,
            elasticNetParam=params.elastic_net_param,
        ),
    ]
    return Pipeline(stages=stages)


def with_positive_probability(predictions: Any) -> Any:
    """Add `p_positive`, the probability of the positive class, as a plain double column."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    return predictions.withColumn(P_POSITIVE, vector_to_array(F.col(PROBABILITY))[1])
