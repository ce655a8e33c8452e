"""Evaluation of a binary classifier's predictions on the held-out split."""

from __future__ import annotations

from typing import Any

from spark_jobs.training.features import LABEL, P_POSITIVE

ROC_BINS = 1000


def evaluate(predictions: Any, threshold: float = 0.5) -> dict[str, Any]:
    """ROC AUC, PR AUC, accuracy, precision, recall, F1 and the confusion matrix.

    `predictions` has a 0/1 `label`, Spark's `rawPrediction` and `p_positive`.
    """
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.sql import functions as F

    evaluator = BinaryClassificationEvaluator(labelCol=LABEL, rawPredictionCol="rawPrediction")
    roc_auc = evaluator.setMetricName("areaUnderROC").evaluate(predictions)
    pr_auc = evaluator.setMetricName("areaUnderPR").evaluate(predictions)

    predicted = F.col(P_POSITIVE) >= threshold
    actual = F.col(LABEL) == 1.0

    def count(cond: Any) -> Any:
        return F.sum(F.when(cond, 1).otherwise(0))

    c = predictions.agg(
        count(predicted & actual).alias("tp"),
        count(predicted & ~actual).alias("fp"),
        count(~predicted & ~actual).alias("tn"),
        count(~predicted & actual).alias("fn"),
    ).first()
    tp, fp, tn, fn = (int(c[k] or 0) for k in ("tp", "fp", "tn", "fn"))
    return summarize_confusion(tp, fp, tn, fn) | {
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "threshold": threshold,
    }


def summarize_confusion(tp: int, fp: int, tn: int, fn: int) -> dict[str, Any]:
    total = tp + fp + tn + fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "accuracy": (tp + tn) / total if total else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "confusion_matrix": {"tp": tp, "fp": fp, "tn": tn, "fn": fn},
    }


def roc_points(predictions: Any, bins: int = ROC_BINS) -> list[tuple[float, float]]:
    """ROC curve as (false positive rate, true positive rate) points, from a binned histogram.

    Binning keeps what reaches the driver at most `bins` rows however big the test split is.
    """
    from pyspark.sql import functions as F

    bucket = F.least(F.floor(F.col(P_POSITIVE) * bins), F.lit(bins - 1)).alias("bucket")
    hist = (
        predictions.groupBy(bucket)
        .agg(
            F.sum(F.col(LABEL)).alias("pos"),
            F.sum(1.0 - F.col(LABEL)).alias("neg"),
        )
        .collect()
    )
    counts = sorted(((int(r["bucket"]), r["pos"], r["neg"]) for r in hist), reverse=True)
    total_pos = sum(c[1] for c in counts) or 1.0
    total_neg = sum(c[2] for c in counts) or 1.0
    points, tp, fp = [(0.0, 0.0)], 0.0, 0.0
    for _, pos, neg in counts:  # from the highest score down: lower the threshold bin by bin
        tp, fp = tp + pos, fp + neg
        points.append((fp / total_neg, tp / total_pos))
    return points
