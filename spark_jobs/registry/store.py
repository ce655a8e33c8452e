"""Model registry under a storage root: immutable versions, a manifest of checksums, a champion.

Layout under `<root>/models/<model>/`:
  versions/<version>/   one folder per version; complete only once manifest.json is there
  _staging/<version>/   where a version is written; a failed or killed run leaves only this
  _leases/<version>.json  the claim of the run writing that version (spark_jobs.registry.leases)
  champion.json         pointer to the champion, moved by compare-and-swap
  gate/<version>.json   the gate's decision for each version that asked for promotion, written
                        before the pointer moves

Usage: python -m spark_jobs registry show|promote --storage-root URI (--model NAME | --spec FILE) ...
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spark_jobs import storage
from spark_jobs.errors import IntegrityError, JobError, NoChampionError, RegistryError, run_cli
from spark_jobs.interface import Decision
from spark_jobs.locations import (
    VERSION_ID,
    argument,
    check_location,
    check_name,
    check_version,
    name_argument,
    storage_root_option,
    version_argument,
)
from spark_jobs.registry.leases import Lease, holder_id, is_free

MANIFEST = "manifest.json"
METRICS = "metrics.json"
PORTABLE = "portable/model.json"
SPEC = "spec.json"
REPORT = "report/index.html"
SPARK_MODEL = "spark_model"


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_version_id() -> str:
    """Sortable by creation time, unique without coordination."""
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Gate:
    """Promotion policy: absolute thresholds plus 'not worse than the champion by > tolerance'."""

    thresholds: Mapping[str, float] = field(default_factory=dict)
    primary_metric: str = "roc_auc"
    tolerance: float = 0.0
    # Drift limits against the champion's training data (spark_jobs.training.drift); None: not checked.
    max_psi: float | None = None
    max_unseen_share: float | None = None


def evaluate_gate(
    metrics: Mapping[str, Any],
    gate: Gate,
    champion_metrics: Mapping[str, Any] | None,
    drift: Mapping[str, Any] | None = None,
    champion: str | None = None,
) -> tuple[bool, list[str]]:
    """Pure gate decision: (passed, one reason per rule, failed or not). `drift` is the version's
    drift record, measured when it was trained; `champion` the champion it is judged against."""
    passed, reasons = drift_reasons(gate, drift, champion)
    for name, minimum in sorted(gate.thresholds.items()):
        value = metrics.get(name)
        if not isinstance(value, int | float):
            passed = False
            reasons.append(f"{name}: no such metric")
            continue
        ok = value >= minimum
        passed &= ok
        reasons.append(f"{name} {value:.4f} {'>=' if ok else '<'} threshold {minimum:.4f}")
    if champion_metrics is not None:
        key = gate.primary_metric
        new, old = metrics.get(key), champion_metrics.get(key)
        if not isinstance(new, int | float) or not isinstance(old, int | float):
            passed = False
            reasons.append(f"{key}: missing on the new version or the champion")
        else:
            ok = new >= old - gate.tolerance
            passed &= ok
            reasons.append(
                f"{key} {new:.4f} {'within' if ok else 'more than'} {gate.tolerance:.4f} "
                f"{'of or above' if ok else 'below'} champion's {old:.4f}"
            )
    else:
        reasons.append("no champion yet")
    return passed, reasons


def drift_reasons(
    gate: Gate, drift: Mapping[str, Any] | None, champion: str | None = None
) -> tuple[bool, list[str]]:
    """The drift rules of a gate, given the version's drift record (its manifest's) and the
    current champion: drift measured against another version than the champion proves nothing."""
    limits = [
        ("max_psi", "max_psi_feature", gate.max_psi, "PSI"),
        ("max_unseen_share", "max_unseen_feature", gate.max_unseen_share, "share of unseen categories"),
    ]
    if all(limit is None for *_, limit, _ in limits):
        return True, []
    against = (drift or {}).get("against")
    if champion is not None and against != champion:
        measured = f"against {against}" if against else "when there was no champion"
        return False, [f"data drift was measured {measured}, but {champion} is champion now: train again"]
    if not drift or "max_psi" not in drift:
        note = (drift or {}).get("note", "no champion when it was trained")
        return True, [f"drift not checked: {note}"]
    passed, reasons = True, []
    for key, feature_key, limit, what in limits:
        if limit is None:
            continue
        value, feature = drift[key], drift.get(feature_key)
        ok = value <= limit
        passed &= ok
        where = f" ({feature})" if feature else ""
        reasons.append(
            f"data drift: largest {what} {value:.4f}{where} {'<=' if ok else '>'} limit {limit:.4f} "
            f"against {drift['against']}'s data"
        )
    return passed, reasons


@dataclass(frozen=True)
class Registry:
    root: str
    model: str
    # How reads reach storage: fsspec by default; the Lambda handler reads S3 with the runtime's boto3.
    read: Callable[[str], bytes] = field(default=storage.read_bytes, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A root, a name or (below) a version id that could reach outside models/<model>/ is
        # refused before anything is read or written.
        check_location(self.root, "storage root")
        check_name(self.model)
        object.__setattr__(self, "root", storage.normalize(self.root))

    @property
    def base(self) -> str:
        return storage.join(self.root, "models", self.model)

    def version_uri(self, version: str) -> str:
        return storage.join(self.base, "versions", check_version(version))

    def staging_uri(self, version: str) -> str:
        return storage.join(self.base, "_staging", check_version(version))

    @property
    def champion_uri(self) -> str:
        return storage.join(self.base, "champion.json")

    def decision_uri(self, version: str) -> str:
        return storage.join(self.base, "gate", f"{check_version(version)}.json")

    # -- writing -----------------------------------------------------------------------------

    def lease_uri(self, version: str) -> str:
        return storage.join(self.base, "_leases", f"{check_version(version)}.json")

    @contextmanager
    def staged(self, version: str, holder: str | None = None) -> Iterator[str]:
        """Yield a staging folder URI for a new version, holding the version's claim (a second
        writer of the same id fails at once, naming this one); remove it if the block fails."""
        what = f"version {version} of model {self.model}"
        with Lease(self.lease_uri(version), holder_id(holder), what):
            if self.has(version):
                raise RegistryError(
                    f"version {version} already exists in {self.base}; versions are immutable"
                )
            self.remove_leftovers()
            staging = self.staging_uri(version)
            # Held by this run, so anything there is an earlier attempt's (a retry taking over the
            # claim of its own killed try): start clean.
            storage.remove_tree(staging)
            try:
                yield staging
            except BaseException:
                storage.remove_tree(staging)
                raise

    def remove_leftovers(self, older_than: float = 3600) -> list[str]:
        """What killed runs left, of any id nobody holds a claim on: staging folders, version
        folders without a manifest (a copy into place on S3 cut short), and (locally) temporary
        files of an interrupted write older than `older_than` seconds. Returns what went."""
        gone = []
        for folder in ("_staging", "versions"):
            fs, path = storage.filesystem(storage.join(self.base, folder))
            if not fs.exists(path):
                continue
            for found in fs.ls(path, detail=False):
                version = found.rstrip("/").rsplit("/", 1)[-1]
                if folder == "versions" and self.has(version):
                    continue
                if VERSION_ID.match(version) and is_free(self.lease_uri(version)):
                    fs.rm(found, recursive=True)
                    gone.append(f"{folder}/{version}")
        if storage.is_local(self.base):
            cutoff = time.time() - older_than
            for folder in (self.base, storage.join(self.base, "gate")):
                for tmp in glob.glob(os.path.join(folder, ".tmp-*")):
                    if os.path.getmtime(tmp) < cutoff:
                        os.unlink(tmp)
                        gone.append(os.path.relpath(tmp, self.base))
        return gone

    def commit(self, version: str, manifest: Mapping[str, Any]) -> str:
        """Check the staged files are whole (a Spark model needs its metadata and every stage),
        checksum them, write the manifest, move the version into place."""
        staging = self.staging_uri(version)
        fs, _ = storage.filesystem(staging)
        listed = storage.list_files(staging)
        missing = spark_model_gaps(listed, lambda rel: bytes(fs.cat_file(listed[rel])))
        if missing:
            raise RegistryError(
                f"version {version} is incomplete and was not committed: its Spark model lacks "
                + ", ".join(missing[:5])
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            )
        files = {rel: storage.sha256_of(fs, path) for rel, path in listed.items()}
        doc = dict(manifest) | {"version": version, "model": self.model, "files": files}
        storage.write_bytes(storage.join(staging, MANIFEST), storage.dump_json(doc))
        final = self.version_uri(version)
        if storage.exists(final):
            raise RegistryError(f"version {version} appeared while staging; not overwriting it")
        storage.move_tree(staging, final, last=MANIFEST)
        return final

    # -- reading -----------------------------------------------------------------------------

    def versions(self) -> list[str]:
        """Complete versions (those with a manifest), oldest first."""
        fs, path = storage.filesystem(storage.join(self.base, "versions"))
        if not fs.exists(path):
            return []
        names = sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False))
        return [v for v in names if fs.exists(f"{path}/{v}/{MANIFEST}")]

    def has(self, version: str) -> bool:
        """Whether `version` is complete: a version's manifest is the last thing committed."""
        return storage.exists(storage.join(self.version_uri(version), MANIFEST))

    def manifest(self, version: str) -> dict[str, Any]:
        try:
            data = self.read(storage.join(self.version_uri(version), MANIFEST))
        except FileNotFoundError:
            raise RegistryError(f"no complete version {version!r} in {self.base}") from None
        return dict(json.loads(data))

    def read_verified(self, version: str, rel: str, manifest: Mapping[str, Any] | None = None) -> bytes:
        """A version's file, after checking it against the manifest's sha256 (pass the manifest
        when reading several files of a version, to read it once)."""
        expected = (manifest or self.manifest(version))["files"].get(rel)
        if expected is None:
            raise IntegrityError(f"{rel} is not listed in the manifest of version {version}")
        data = self.read(storage.join(self.version_uri(version), rel))
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise IntegrityError(
                f"{rel} of version {version} is corrupt: sha256 {actual} but the manifest says {expected}"
            )
        return data

    def metrics(self, version: str) -> dict[str, Any]:
        return dict(json.loads(self.read_verified(version, METRICS)))

    def champion(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads(self.read(self.champion_uri)))
        except FileNotFoundError:
            return None

    def champion_version(self) -> str:
        champ = self.champion()
        if champ is None:
            raise NoChampionError(f"no champion yet in {self.base}: train and promote a model first")
        return str(champ["version"])

    def load_portable(self, version: str | None = None) -> Any:
        """The portable model of a version (the champion by default), checksum verified."""
        from spark_jobs.registry.portable import PortableModel

        version = self.champion_version() if version is None else version
        return PortableModel.from_bytes(self.read_verified(version, PORTABLE))

    # -- promotion ---------------------------------------------------------------------------

    def promote(self, version: str, gate: Gate) -> dict[str, Any]:
        """Make `version` champion if it passes the gate; record the decision either way.

        The decision is written before the pointer moves, and the pointer moves by compare-and-
        swap: if another promotion moved it since it was read, the gate runs again against the new
        champion, so two promotions at once cannot lose one."""
        metrics = self.metrics(version)
        while True:
            current = storage.read_tagged(self.champion_uri)
            champ = json.loads(current[0]) if current else None
            if champ is not None and champ["version"] == version:
                return self._already_champion(version)
            champion_metrics = self.metrics(champ["version"]) if champ else None
            drift = self.manifest(version).get("drift")
            champion = champ["version"] if champ else None
            passed, reasons = evaluate_gate(metrics, gate, champion_metrics, drift, champion)
            decision = {
                "model": self.model,
                "version": version,
                "promoted": passed,
                "reasons": reasons,
                "gate": {
                    "thresholds": dict(gate.thresholds),
                    "primary_metric": gate.primary_metric,
                    "tolerance": gate.tolerance,
                    "max_psi": gate.max_psi,
                    "max_unseen_share": gate.max_unseen_share,
                },
                "champion_before": champ["version"] if champ else None,
                "decided_at": utc_now(),
            }
            storage.write_bytes(self.decision_uri(version), storage.dump_json(decision))
            if not passed:
                return decision
            pointer = {
                "version": version,
                "promoted_at": decision["decided_at"],
                "previous": decision["champion_before"],
                gate.primary_metric: metrics.get(gate.primary_metric),
            }
            if storage.replace_if(
                self.champion_uri, storage.dump_json(pointer), current[1] if current else None
            ):
                return decision

    def _already_champion(self, version: str) -> dict[str, Any]:
        """The answer for a version that is champion already; its gate record is written if a
        killed run left the pointer moved without one."""
        answer = {"model": self.model, "version": version, "promoted": True, "reasons": ["already champion"]}
        if not storage.exists(self.decision_uri(version)):
            record = answer | {
                "reasons": ["champion without a gate record: recorded now"],
                "decided_at": utc_now(),
            }
            storage.write_bytes(self.decision_uri(version), storage.dump_json(record))
        return answer

    def table(self) -> str:
        """The registry as a text table: versions, headline metrics, champion."""
        champ = self.champion()
        champion_version = champ["version"] if champ else None
        lines = [f"registry {self.base}", f"champion: {champion_version or '(none)'}"]
        if champion_version:
            lines.append(f"report:   {storage.join(self.version_uri(champion_version), REPORT)}")
        header = f"{'':2}{'version':<26}{'created':<22}{'roc_auc':>8}{'pr_auc':>8}{'f1':>8}{'test rows':>11}"
        lines += ["", header]
        versions = self.versions()
        for v in versions:
            m = self.metrics(v)
            created = self.manifest(v).get("created_at", "")
            mark = "* " if v == champion_version else "  "
            lines.append(
                f"{mark}{v:<26}{created:<22}{m['roc_auc']:>8.4f}{m['pr_auc']:>8.4f}{m['f1']:>8.4f}"
                f"{m['rows']['test']:>11,}"
            )
        if not versions:
            lines.append("  (no versions yet)")
        return "\n".join(lines)


def spark_model_gaps(files: Mapping[str, Any], read: Callable[[str], bytes]) -> list[str]:
    """What a staged Spark PipelineModel lacks of what Spark's writer puts there: the pipeline's
    metadata and, for each stage it names, the stage's metadata and (for a fitted model) its data,
    each with the _SUCCESS marker written last. [] when it is whole or there is no Spark model.
    `files` are the staged files by relative path; `read` reads one of them."""
    prefix = SPARK_MODEL + "/"
    names = {rel[len(prefix) :] for rel in files if rel.startswith(prefix)}
    if not names:
        return []

    def first_json(folder: str) -> dict[str, Any]:
        part = min(n for n in names if n.startswith(f"{folder}/part-"))
        return dict(json.loads(read(prefix + part).splitlines()[0]))

    if "metadata/_SUCCESS" not in names:
        return [f"{SPARK_MODEL}/metadata"]
    gaps = []
    for i, uid in enumerate(first_json("metadata")["paramMap"]["stageUids"]):
        stage = f"stages/{i}_{uid}"
        if f"{stage}/metadata/_SUCCESS" not in names:
            gaps.append(f"{SPARK_MODEL}/{stage}/metadata")
        elif (
            first_json(f"{stage}/metadata")["class"].endswith("Model")
            and f"{stage}/data/_SUCCESS" not in names
        ):
            gaps.append(f"{SPARK_MODEL}/{stage}/data")
    return gaps


def gate_from(spec_gate: Any, thresholds: Sequence[str] = (), tolerance: float | None = None) -> Gate:
    """The spec's gate with command-line overrides (`NAME=VALUE` thresholds)."""
    from spark_jobs.spec import check_metric_names

    merged = dict(spec_gate.thresholds) if spec_gate else {}
    for item in thresholds:
        name, sep, value = item.partition("=")
        try:
            merged[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise JobError(f"--min-metric expects NAME=VALUE, e.g. roc_auc=0.88; got {item!r}")
    try:
        check_metric_names(list(merged))
    except ValueError as exc:
        raise JobError(f"--min-metric: {exc}") from None
    return Gate(
        thresholds=merged,
        primary_metric=spec_gate.primary_metric if spec_gate else "roc_auc",
        tolerance=(spec_gate.tolerance if spec_gate else 0.0) if tolerance is None else tolerance,
        max_psi=spec_gate.drift.max_psi if spec_gate else None,
        max_unseen_share=spec_gate.drift.max_unseen_share if spec_gate else None,
    )


def add_gate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--min-metric",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="gate threshold, overriding the spec's (repeatable), e.g. roc_auc=0.88",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="how far below the champion's primary metric a new version may be (default: spec)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    from spark_jobs.spec import load_spec

    parser = argparse.ArgumentParser(prog="python -m spark_jobs registry", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("show", "list versions, metrics and the champion"),
        ("promote", "run the metric gate and make a version champion if it passes"),
    ):
        p = sub.add_parser(name, help=text)
        storage_root_option(p)
        p.add_argument(
            "--spec", type=argument("spec"), help="dataset spec; names the model and holds the default gate"
        )
        p.add_argument("--model", type=name_argument, help="model (dataset) name, instead of --spec for show")
        if name == "show":
            p.add_argument(
                "--report-copy",
                type=Path,
                help="copy the champion's report into this local folder, for a browser to open",
            )
        if name == "promote":
            p.add_argument("--version", required=True, type=version_argument)
            add_gate_arguments(p)
    args = parser.parse_args(argv)
    if not args.spec and not (args.model and args.command == "show"):
        parser.error("give --spec (or --model for show)")

    def command() -> None:
        spec = load_spec(args.spec) if args.spec else None
        registry = Registry(args.storage_root, spec.name if spec else args.model)
        if args.command == "show":
            print(registry.table())
            if args.report_copy and (champion := registry.champion()):
                report = storage.join(registry.version_uri(champion["version"]), REPORT)
                folder = args.report_copy / registry.model / champion["version"]
                fs, _ = storage.filesystem(report)
                for name, path in storage.list_files(report.rsplit("/", 1)[0]).items():
                    (folder / name).parent.mkdir(parents=True, exist_ok=True)
                    (folder / name).write_bytes(fs.cat_file(path))
                print(f"open:     {(folder / REPORT.rsplit('/', 1)[1]).resolve()}")
        else:
            assert spec is not None
            gate = gate_from(spec.gate, args.min_metric, args.tolerance)
            print(Decision(**registry.promote(args.version, gate)).show())

    return run_cli(command)
