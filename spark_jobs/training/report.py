"""The model report: ROC curve, confusion matrix and strongest weights as PNG, on one HTML page."""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from typing import Any


def render(
    version: str,
    metrics: Mapping[str, Any],
    roc: Sequence[tuple[float, float]],
    portable_doc: Mapping[str, Any],
    facts: Mapping[str, Any],
    drift: Mapping[str, Any] | None = None,
) -> dict[str, bytes]:
    """Return the report's files by name: index.html and the PNGs it shows."""
    files = {
        "roc.png": _roc_png(roc, metrics["roc_auc"]),
        "confusion.png": _confusion_png(metrics["confusion_matrix"], portable_doc["target"]),
        "weights.png": _weights_png(_top_weights(portable_doc)),
    }
    files["index.html"] = _page(version, metrics, facts, drift).encode()
    return files


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display on EMR nodes, in pods or in CI
    from matplotlib import pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _figure().close(fig)
    return buf.getvalue()


def _roc_png(roc: Sequence[tuple[float, float]], auc: float) -> bytes:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([p[0] for p in roc], [p[1] for p in roc], lw=2, label=f"model (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve, test split")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return _png(fig)


def _confusion_png(cm: Mapping[str, int], target: Mapping[str, str]) -> bytes:
    plt = _figure()
    cells = [[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]]
    total = sum(cm.values()) or 1
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    ax.imshow(cells, cmap="Blues")
    for i in range(2):
        for j in range(2):
            share = cells[i][j] / total
            colour = "white" if share > 0.5 else "black"
            ax.text(j, i, f"{cells[i][j]:,}\n{share:.1%}", ha="center", va="center", color=colour)
    labels = [target["negative"], target["positive"]]
    ax.set_xticks([0, 1], labels=labels)
    ax.set_yticks([0, 1], labels=labels)
    ax.set(xlabel="predicted", ylabel="actual", title="Confusion matrix, threshold 0.5")
    return _png(fig)


def _top_weights(doc: Mapping[str, Any], k: int = 15) -> list[tuple[str, float]]:
    named = [(c["name"], c["weight"]) for c in doc["numeric"]]
    for c in doc["categorical"]:
        named += [(f"{c['name']}={cat}", w) for cat, w in zip(c["categories"], c["weights"], strict=True)]
    return sorted(named, key=lambda nw: abs(nw[1]), reverse=True)[:k]


def _weights_png(weights: list[tuple[str, float]]) -> bytes:
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5.6, 0.3 * len(weights) + 1.2))
    names = [n for n, _ in reversed(weights)]
    values = [w for _, w in reversed(weights)]
    ax.barh(names, values, color=["tab:blue" if v > 0 else "tab:red" for v in values])
    ax.axvline(0, color="black", lw=0.8)
    ax.set(xlabel="weight (standardized numerics, one-hot categories)", title="Strongest weights")
    return _png(fig)


def _drift_section(drift: Mapping[str, Any] | None) -> str:
    """Per-feature drift against the champion's training data (spark_jobs.training.drift)."""
    esc = html.escape
    if not drift:
        return "<h2>Data drift</h2><p>No champion yet: nothing to compare with.</p>"
    if "features" not in drift:
        return f"<h2>Data drift</h2><p>{esc(drift.get('note', ''))}</p>"
    rows = []
    for name, f in sorted(drift["features"].items(), key=lambda kv: -kv[1]["psi"]):
        if "median" in f:
            old, new = f["median"]
            detail = f"median {old:g} &rarr; {new:g}" if old is not None and new is not None else ""
        else:
            detail = (
                "unseen categories not told (the champion kept only its most frequent ones)"
                if f["unseen_share"] is None
                else f"unseen categories {f['unseen_share']:.2%}"
                + (": " + ", ".join(esc(repr(c)) for c in f["unseen"]) if f["unseen"] else "")
            )
        rows.append(f"<tr><th>{esc(name)}</th><td>{f['psi']:.4f}</td><td>{detail}</td></tr>")
    return (
        f"<h2>Data drift against {esc(drift['against'])}'s data</h2>"
        f"<table><tr><th>feature</th><th>PSI</th><th></th></tr>{''.join(rows)}</table>"
    )


def _page(
    version: str, metrics: Mapping[str, Any], facts: Mapping[str, Any], drift: Mapping[str, Any] | None
) -> str:
    esc = html.escape
    headline = ["roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1"]
    metric_rows = "".join(f"<tr><th>{esc(k)}</th><td>{metrics[k]:.4f}</td></tr>" for k in headline)
    fact_rows = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in facts.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Model {esc(version)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5rem; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .3rem .8rem; text-align: left; }}
td {{ font-variant-numeric: tabular-nums; }}
.plots img {{ max-width: 48%; vertical-align: top; }}
</style></head><body>
<h1>Model {esc(version)}</h1>
<h2>Held-out metrics</h2><table>{metric_rows}</table>
<div class="plots"><img src="roc.png" alt="ROC curve"><img src="confusion.png" alt="confusion matrix"></div>
<div class="plots"><img src="weights.png" alt="strongest weights"></div>
{_drift_section(drift)}
<h2>Run</h2><table>{fact_rows}</table>
</body></html>
"""
