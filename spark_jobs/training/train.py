"""Train a model on a dataset described by a spec and register it as a new immutable version.

Reads the input, enforces the data contract, fits the MLlib pipeline on a seeded split,
evaluates it on the held-out part, exports the portable model (and checks that it predicts what
Spark predicts), writes the report, and commits the version to the registry. With --promote it
then runs the metric gate.
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from spark_jobs import storage
from spark_jobs.data.contract import inspect_input, read_checked
from spark_jobs.errors import DataContractError, JobError, run_cli
from spark_jobs.locations import argument, storage_root_option, version_argument
from spark_jobs.registry.store import (
    METRICS,
    PORTABLE,
    REPORT,
    SPARK_MODEL,
    SPEC,
    Registry,
    add_gate_arguments,
    gate_from,
    new_version_id,
    utc_now,
)
from spark_jobs.shipping.package import code_version
from spark_jobs.spec import load_spec
from spark_jobs.training.features import LABEL, P_POSITIVE, TrainParams, build_pipeline, split, with_label

log = logging.getLogger("spark_jobs.training.train")

# Spark and the export compute the same double-precision formula; anything above this means
# the export maps a feature wrongly, and such a model must not be registered.
PARITY_TOLERANCE = 1e-6
PARITY_SAMPLE_ROWS = 20_000


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m spark_jobs train", description=__doc__.split("\n")[0])
    p.add_argument(
        "--input",
        required=True,
        type=argument("input"),
        help="CSV/Parquet file, folder or glob (path or URI)",
    )
    p.add_argument("--spec", required=True, type=argument("spec"), help="dataset spec YAML (path or URI)")
    storage_root_option(p)
    p.add_argument(
        "--version", type=version_argument, help="version id (default: UTC timestamp plus a random suffix)"
    )
    p.add_argument("--run-id", default="manual", help="the orchestrator's run id, kept in the manifest")
    defaults = TrainParams()
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--test-fraction", type=float, default=defaults.test_fraction)
    p.add_argument("--max-iter", type=int, default=defaults.max_iter)
    p.add_argument("--reg-param", type=float, default=defaults.reg_param)
    p.add_argument("--elastic-net-param", type=float, default=defaults.elastic_net_param)
    p.add_argument("--promote", action="store_true", help="run the metric gate after registering")
    p.add_argument(
        "--skip-if-exists",
        action="store_true",
        help="exit 0 without training if --version is already complete (re-runs of a scheduled night)",
    )
    add_gate_arguments(p)
    args = p.parse_args(argv)
    if not 0.0 < args.test_fraction < 1.0:
        p.error("--test-fraction must be between 0 and 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def train() -> None:
        result = run(args)
        done = "metrics" in result
        if done:
            print(summary(result))
            return
        decision = result["decision"]
        gated = f"; gate: {'champion' if decision['promoted'] else 'not promoted'}" if decision else ""
        print(f"version {result['version']} is already complete: {result['uri']}{gated}")

    return run_cli(train)


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    spec = load_spec(args.spec)
    gate = gate_from(spec.gate, args.min_metric, args.tolerance)
    inp = inspect_input(args.input, spec)
    registry = Registry(args.storage_root, spec.name)
    version = args.version or new_version_id()
    params = TrainParams(
        seed=args.seed,
        test_fraction=args.test_fraction,
        max_iter=args.max_iter,
        reg_param=args.reg_param,
        elastic_net_param=args.elastic_net_param,
    )
    if args.skip_if_exists and registry.has(version):
        # Complete already (a re-run of the night): not trained twice, but still gated if asked.
        decision = registry.promote(version, gate) if args.promote else None
        return {"version": version, "uri": registry.version_uri(version), "decision": decision}
    with registry.staged(version, holder=args.run_id) as staging:
        from spark_jobs.session import get_spark

        spark = get_spark(f"train-{spec.name}")
        spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
        log.info("checking %s against spec %s", inp.uri, spec.name)
        data = with_label(read_checked(spark, inp, spec), spec)
        profile, drift = data_drift(registry, data, spec)
        trained = fit_and_evaluate(data, spec, params)
        log.info(
            "metrics: roc_auc=%.4f pr_auc=%.4f", trained["metrics"]["roc_auc"], trained["metrics"]["pr_auc"]
        )

        manifest = {
            "created_at": utc_now(),
            "run_id": args.run_id,
            "code_version": code_version(),
            "data": {"uri": inp.uri, "files": len(inp.files), "fingerprint": inp.fingerprint},
            "params": asdict(params),
            "spark_version": spark.version,
            "python_version": platform.python_version(),
            "profile": profile,
            "drift": drift,
        }
        write_artefacts(staging, version, trained, spec, manifest)
        uri = registry.commit(version, manifest)
    decision = registry.promote(version, gate) if args.promote else None
    return {
        "version": version,
        "uri": uri,
        "report": storage.join(uri, REPORT),
        "metrics": trained["metrics"],
        "decision": decision,
        "champion": registry.champion(),
        "seconds": round(time.monotonic() - started, 1),
    }


def write_artefacts(
    staging: str, version: str, trained: dict[str, Any], spec: Any, manifest: dict[str, Any]
) -> None:
    """Spark model, portable export, metrics, spec and report into the staging folder."""
    from spark_jobs.training import report

    met = trained["metrics"]
    trained["model"].write().save(storage.spark_uri(storage.join(staging, SPARK_MODEL)))
    storage.write_bytes(storage.join(staging, PORTABLE), storage.dump_json(trained["portable"]))
    storage.write_bytes(storage.join(staging, METRICS), storage.dump_json(met))
    storage.write_bytes(storage.join(staging, SPEC), storage.dump_json(spec.model_dump()))
    code = manifest["code_version"]
    facts = {
        "dataset": spec.name,
        "input": manifest["data"]["uri"],
        "data fingerprint": manifest["data"]["fingerprint"],
        "rows (train / test)": f"{met['rows']['train']:,} / {met['rows']['test']:,}",
        "run id": manifest["run_id"],
        "code version": f"{code['package']} (git {code['git_commit'] or 'n/a'}, "
        f"sources sha256 {code['source_sha256'][:16]})",
        "parameters": manifest["params"],
        "Spark / Python": f"{manifest['spark_version']} / {manifest.get('python_version', 'n/a')}",
        "portable max |p diff|": f"{met['portable_max_abs_diff']:.2e}",
        "trained at": manifest["created_at"],
    }
    pages = report.render(version, met, trained["roc"], trained["portable"], facts, manifest.get("drift"))
    for name, content in pages.items():
        storage.write_bytes(storage.join(staging, "report", name), content)


def data_drift(registry: Registry, data: Any, spec: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The data's profile, and its drift from the champion's training data (None: no champion)."""
    from spark_jobs.training import drift

    profile = drift.profile(data, spec)
    champion = registry.champion()
    if champion is None:
        return profile, None
    version = champion["version"]
    measured = drift.measure(data, profile, registry.manifest(version).get("profile"), version)
    if "max_psi" in measured:
        log.info(
            "data drift against %s: largest PSI %.4f (%s), largest share of unseen categories %.4f",
            version,
            measured["max_psi"],
            measured["max_psi_feature"],
            measured["max_unseen_share"],
        )
    return profile, measured


def fit_and_evaluate(data: Any, spec: Any, params: TrainParams) -> dict[str, Any]:
    """Fit on the train split, evaluate on the test split, export and parity-check the model."""
    from spark_jobs.registry.portable import PortableModel, export_pipeline
    from spark_jobs.training import metrics as m
    from spark_jobs.training.features import with_positive_probability

    train, test = split(data, params)
    train, test = train.cache(), test.cache()
    counts = {r[LABEL]: r["count"] for r in train.groupBy(LABEL).count().collect()}
    if len(counts) < 2:
        raise DataContractError(
            f"target column {spec.target.column!r} has a single value in the training split; "
            "training needs both labels"
        )
    test_rows = test.count()
    if test_rows == 0:
        raise DataContractError("the test split is empty: give more rows or a larger --test-fraction")

    model = build_pipeline(spec, params).fit(train)
    predictions = with_positive_probability(model.transform(test)).cache()
    result = m.evaluate(predictions)
    result["rows"] = {
        "train": int(sum(counts.values())),
        "test": test_rows,
        "train_positive": int(counts.get(1.0, 0)),
    }
    try:
        doc = with_observed_ranges(export_pipeline(model, spec), train)
        portable = PortableModel.from_bytes(storage.dump_json(doc))
    except ValueError as exc:
        raise JobError(f"cannot export the model: {exc}") from None
    result["portable_max_abs_diff"] = parity(predictions, portable, spec)
    if not result["portable_max_abs_diff"] <= PARITY_TOLERANCE:  # NaN fails too
        raise JobError(
            f"portable export disagrees with Spark by {result['portable_max_abs_diff']:.3g} "
            f"(> {PARITY_TOLERANCE}); not registering this version"
        )
    return {"model": model, "metrics": result, "roc": m.roc_points(predictions), "portable": doc}


def with_observed_ranges(doc: dict[str, Any], train: Any) -> dict[str, Any]:
    """The portable model with each numeric feature's range in the training split (`observed`:
    [min, max]), so serving can tell a value the model never saw anything like."""
    from pyspark.sql import functions as F

    names = [c["name"] for c in doc["numeric"]]
    if not names:
        return doc
    row = train.agg(
        *[F.min(n).alias(f"lo{i}") for i, n in enumerate(names)],
        *[F.max(n).alias(f"hi{i}") for i, n in enumerate(names)],
    ).first()
    numeric = [
        c | {"observed": [float(row[f"lo{i}"]), float(row[f"hi{i}"])]} if row[f"lo{i}"] is not None else c
        for i, c in enumerate(doc["numeric"])
    ]
    return doc | {"numeric": numeric}


def parity(predictions: Any, model: Any, spec: Any) -> float:
    """Largest |p_spark - p_portable| over (a sample of) the test split."""
    rows = predictions.select(*spec.features, P_POSITIVE).limit(PARITY_SAMPLE_ROWS).toPandas()
    diff = abs(model.predict_proba(rows) - rows[P_POSITIVE].to_numpy())
    return float(diff.max()) if len(diff) else 0.0


def summary(result: dict[str, Any]) -> str:
    met = result["metrics"]
    lines = [
        f"trained version {result['version']} in {result['seconds']} s",
        f"  metrics   roc_auc {met['roc_auc']:.4f}  pr_auc {met['pr_auc']:.4f}  "
        f"accuracy {met['accuracy']:.4f}  f1 {met['f1']:.4f}  (test rows {met['rows']['test']:,})",
        f"  version   {result['uri']}",
        f"  metrics   {storage.join(result['uri'], METRICS)}",
        f"  report    {result['report']}",
    ]
    decision = result["decision"]
    if decision is not None:
        verdict = "promoted to champion" if decision["promoted"] else "NOT promoted"
        lines.append(f"  gate      {verdict}: " + "; ".join(decision["reasons"]))
    champ = result["champion"]
    lines.append(f"  champion  {champ['version'] if champ else '(none)'}")
    return "\n".join(lines)
