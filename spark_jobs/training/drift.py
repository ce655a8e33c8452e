"""Data drift: how far a new version's training data is from its champion's.

Training records a profile of its data in the manifest (each categorical feature's category
shares, each numeric feature's deciles and the share of rows between them) and compares it with
the champion's: the population stability index (PSI) of every feature over the champion's
categories or decile bins, and the share of rows whose category the champion's data never had.
The gate refuses a version past the spec's limits (`gate.drift`), so data broken upstream
(shifted units, mis-decoded text) does not become champion because its metrics still look good.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

BINS = 10
# Categories kept per feature (the most frequent); the rest count as one "(other)" share, and a
# later version is compared over these categories (and the rest as one).
MAX_CATEGORIES = 1000
OTHER = "(other)"
NULL = "(null)"
# A share of 0 on one side would make the PSI infinite.
FLOOR = 1e-4
# Unseen categories named in the report, each cut to SHOWN_CHARS characters.
SHOWN_UNSEEN = 5
SHOWN_CHARS = 40


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of two distributions over the same bins."""
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, FLOOR), max(a, FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def profile(data: Any, spec: Any) -> dict[str, Any]:
    """A profile of the features in `data` (Spark): what a later version is compared with."""
    from pyspark.sql import functions as F

    rows = data.count()
    features: dict[str, Any] = {}
    numeric = [n for n in spec.features if spec.columns[n].role == "numeric"]
    if numeric and rows:
        deciles = data.approxQuantile(numeric, [i / BINS for i in range(1, BINS)], 0.001)
        edges = {n: sorted(set(q)) for n, q in zip(numeric, deciles, strict=True)}
        shares = bin_shares(data, edges, rows)
        for n, q in zip(numeric, deciles, strict=True):
            features[n] = {"kind": "numeric", "deciles": q, "edges": edges[n], "shares": shares[n]}
    for n in spec.features:
        if spec.columns[n].role != "categorical":
            continue
        counts = data.groupBy(n).count().orderBy(F.desc("count"), F.asc(n)).limit(MAX_CATEGORIES).collect()
        kept = {(NULL if r[n] is None else str(r[n])): r["count"] / rows for r in counts}
        rest = 1.0 - sum(kept.values())
        features[n] = {"kind": "categorical", "shares": kept | ({OTHER: rest} if rest > 1e-12 else {})}
    return {"rows": rows, "features": features}


def bin_shares(data: Any, edges: Mapping[str, Sequence[float]], rows: int) -> dict[str, list[float]]:
    """Each numeric column's share of rows in the bins its edges make, (-inf, e1], (e1, e2], ...,
    (ek, inf), then the null share: one pass over the data."""
    from pyspark.sql import functions as F

    exprs: list[Any] = []
    index: list[str] = []
    for n, e in edges.items():
        col = F.col(n)
        conditions = [col <= e[0]] if e else [col.isNotNull()]
        conditions += [(col > lo) & (col <= hi) for lo, hi in zip(e, e[1:], strict=False)]
        conditions += [col > e[-1]] if e else []
        for condition in [*conditions, col.isNull()]:
            exprs.append(F.sum(F.when(condition, 1).otherwise(0)).alias(f"b{len(exprs)}"))
            index.append(n)
    shares: dict[str, list[float]] = {n: [] for n in edges}
    if not exprs:
        return shares
    row = data.agg(*exprs).first()
    for i, n in enumerate(index):
        shares[n].append((row[f"b{i}"] or 0) / rows if rows else 0.0)
    return shares


def category_shares(data: Any, name: str, known: Sequence[str], rows: int) -> dict[str, Any]:
    """A categorical column's shares over the champion's categories (`known`, and nulls), the
    rest as OTHER, and the most frequent values the champion never had."""
    from pyspark.sql import functions as F

    if not rows:
        return {"shares": {}, "outside": 0.0, "top": []}
    col = F.col(name)
    key = F.when(col.isNull(), F.lit(NULL)).otherwise(col.cast("string")).alias("k")
    counts = data.groupBy(key).count()
    listed = [c for c in {*known, NULL} if c != OTHER]
    inside = {r["k"]: r["count"] / rows for r in counts.filter(F.col("k").isin(listed)).collect()}
    outside = max(0.0, 1.0 - sum(inside.values()))
    top = []
    if outside > 0:
        frequent = counts.filter(~F.col("k").isin(listed)).orderBy(F.desc("count"), F.asc("k"))
        top = [(r["k"], r["count"] / rows) for r in frequent.limit(SHOWN_UNSEEN).collect()]
    return {"shares": inside | ({OTHER: outside} if outside else {}), "outside": outside, "top": top}


def compare(
    champion: Mapping[str, Any],
    new: Mapping[str, Any],
    new_on_champion_bins: Mapping[str, Sequence[float]],
    new_on_champion_categories: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """Per-feature drift of `new` (a profile) from `champion` (the champion's profile): numeric
    features by their shares over the champion's bins, categorical ones over the champion's
    categories (category_shares). Pure."""
    features: dict[str, Any] = {}
    for n, old in champion["features"].items():
        cur = new["features"].get(n)
        if cur is None or cur["kind"] != old["kind"]:
            continue  # the spec changed the feature: nothing comparable
        if old["kind"] == "numeric":
            features[n] = {
                "psi": round(psi(old["shares"], new_on_champion_bins[n]), 6),
                "median": [_median(old["deciles"]), _median(cur["deciles"])],
            }
            continue
        now = new_on_champion_categories[n]
        categories = sorted(set(old["shares"]) | set(now["shares"]))
        before = [old["shares"].get(c, 0.0) for c in categories]
        after = [now["shares"].get(c, 0.0) for c in categories]
        # Values outside the champion's list are unseen only if its list was complete.
        complete = OTHER not in old["shares"]
        features[n] = {
            "psi": round(psi(before, after), 6),
            "unseen_share": round(now["outside"], 6) if complete else None,
            "unseen": [_cut(value) for value, _ in now["top"]] if complete else [],
        }
    worst = max(features, key=lambda n: features[n]["psi"], default=None)
    unseen = {n: f["unseen_share"] for n, f in features.items() if f.get("unseen_share")}
    most_unseen = max(unseen, key=unseen.__getitem__, default=None)
    return {
        "features": features,
        "max_psi": features[worst]["psi"] if worst else 0.0,
        "max_psi_feature": worst,
        "max_unseen_share": unseen[most_unseen] if most_unseen else 0.0,
        "max_unseen_feature": most_unseen,
    }


def measure(
    data: Any, new: Mapping[str, Any], champion: Mapping[str, Any] | None, against: str
) -> dict[str, Any]:
    """The drift of `data` (profiled as `new`) from the champion `against` (its profile, if its
    manifest has one)."""
    if champion is None:
        return {"against": against, "note": f"champion {against} has no data profile: drift not measured"}
    both = {
        n: f for n, f in champion["features"].items() if new["features"].get(n, {}).get("kind") == f["kind"]
    }
    edges = {n: f["edges"] for n, f in both.items() if f["kind"] == "numeric"}
    categories = {
        n: category_shares(data, n, list(f["shares"]), new["rows"])
        for n, f in both.items()
        if f["kind"] == "categorical"
    }
    on_champion_bins = bin_shares(data, edges, new["rows"])
    return {"against": against} | compare(champion, new, on_champion_bins, categories)


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}..."


def _median(deciles: Sequence[float]) -> float | None:
    return deciles[len(deciles) // 2] if deciles else None
