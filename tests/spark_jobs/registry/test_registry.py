"""Registry semantics locally, on fsspec's in-memory filesystem and on S3 (the emulator's, via s3fs)."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from spark_jobs import storage
from spark_jobs.errors import IntegrityError, JobError, RegistryError
from spark_jobs.locations import LocationError
from spark_jobs.registry.leases import ClaimedError
from spark_jobs.registry.store import Gate, Registry, evaluate_gate, gate_from

METRICS = {"roc_auc": 0.91, "pr_auc": 0.55, "f1": 0.45, "rows": {"test": 100}}


@pytest.fixture(params=["local", "s3"])
def registry(request, tmp_path, monkeypatch):
    """A registry on both roads the jobs take: a local folder and (the emulator's) S3."""
    if request.param == "s3":
        request.getfixturevalue("s3_env")
        return Registry(f"s3://registry/{uuid.uuid4().hex}", "demo")
    return Registry(str(tmp_path / "root"), "demo")


def _add_version(registry: Registry, version: str, metrics: dict | None = None) -> None:
    with registry.staged(version) as staging:
        storage.write_bytes(storage.join(staging, "metrics.json"), storage.dump_json(metrics or METRICS))
        storage.write_bytes(storage.join(staging, "portable/model.json"), b"{}")
        registry.commit(version, {"created_at": "2026-01-01T00:00:00Z"})


def test_committed_version_lists_every_file_with_its_checksum(registry):
    _add_version(registry, "v1")
    manifest = registry.manifest("v1")
    assert set(manifest["files"]) == {"metrics.json", "portable/model.json"}
    assert registry.versions() == ["v1"]
    assert registry.metrics("v1")["roc_auc"] == 0.91
    assert not storage.exists(registry.staging_uri("v1"))


def test_failed_run_leaves_no_version_and_no_staging(registry):
    with pytest.raises(RuntimeError), registry.staged("v1") as staging:
        storage.write_bytes(storage.join(staging, "metrics.json"), b"{}")
        raise RuntimeError("spark died")
    assert registry.versions() == []
    assert not storage.exists(registry.staging_uri("v1"))


def test_killed_run_leaves_staging_that_never_looks_complete(registry):
    # A killed process cannot clean up: its staging folder stays, without a manifest.
    storage.write_bytes(storage.join(registry.staging_uri("v1"), "metrics.json"), b"{}")
    assert registry.versions() == []
    # A version folder with files but no manifest (a half-copied version) is not complete either.
    storage.write_bytes(storage.join(registry.version_uri("v2"), "metrics.json"), b"{}")
    assert registry.versions() == []
    with pytest.raises(RegistryError, match="no complete version 'v2'"):
        registry.metrics("v2")
    # The same version ids can be trained again after a kill.
    _add_version(registry, "v1")
    _add_version(registry, "v2")
    assert registry.versions() == ["v1", "v2"]


def test_versions_are_immutable(registry):
    _add_version(registry, "v1")
    with pytest.raises(RegistryError, match="immutable"), registry.staged("v1"):
        pass


@pytest.mark.parametrize("bad", ["", "../escape", "a/b", "-x", "x" * 200])
def test_version_ids_are_safe_path_segments(registry, bad):
    with pytest.raises(LocationError, match="version id"), registry.staged(bad):
        pass


def test_tampered_file_fails_its_checksum(registry):
    _add_version(registry, "v1")
    storage.write_bytes(storage.join(registry.version_uri("v1"), "metrics.json"), b'{"roc_auc": 1.0}')
    with pytest.raises(IntegrityError, match="metrics.json of version v1 is corrupt"):
        registry.metrics("v1")


def test_promotion_moves_the_champion_only_through_the_gate(registry):
    gate = Gate(thresholds={"roc_auc": 0.85}, primary_metric="roc_auc", tolerance=0.01)
    _add_version(registry, "v1", METRICS)
    _add_version(registry, "v2", METRICS | {"roc_auc": 0.80})  # below threshold
    _add_version(registry, "v3", METRICS | {"roc_auc": 0.905})  # a little worse, within tolerance
    _add_version(registry, "v5", METRICS | {"roc_auc": 0.86})  # passes the threshold, regresses

    assert registry.champion() is None
    assert registry.promote("v1", gate)["promoted"]
    assert not registry.promote("v2", gate)["promoted"]
    assert registry.champion()["version"] == "v1"
    assert registry.promote("v3", gate)["promoted"]
    assert registry.champion()["previous"] == "v1"
    decision = registry.promote("v5", gate)
    assert not decision["promoted"]
    assert any("below champion's 0.9050" in r for r in decision["reasons"])
    assert registry.champion()["version"] == "v3"
    recorded = json.loads(storage.read_bytes(registry.decision_uri("v5")))
    assert recorded["promoted"] is False and recorded["champion_before"] == "v3"


def test_registry_table_marks_the_champion(registry):
    _add_version(registry, "v1")
    _add_version(registry, "v2", METRICS | {"roc_auc": 0.93})
    registry.promote("v2", Gate())
    table = registry.table()
    assert "champion: v2" in table
    assert [line[:4] for line in table.splitlines() if "v1" in line or "v2 " in line] == ["  v1", "* v2"]


def test_empty_registry_table_and_missing_champion(registry):
    assert "(no versions yet)" in registry.table()
    with pytest.raises(RegistryError, match="no champion yet"):
        registry.load_portable()


def test_gate_rules():
    gate = Gate(thresholds={"roc_auc": 0.9, "pr_auc": 0.5}, tolerance=0.02)
    assert evaluate_gate({"roc_auc": 0.9, "pr_auc": 0.5}, gate, None)[0]
    assert not evaluate_gate({"roc_auc": 0.89, "pr_auc": 0.9}, gate, None)[0]
    assert not evaluate_gate({"roc_auc": 0.95}, gate, None)[0]  # pr_auc missing
    assert evaluate_gate({"roc_auc": 0.93, "pr_auc": 0.6}, gate, {"roc_auc": 0.95})[0]
    assert not evaluate_gate({"roc_auc": 0.92, "pr_auc": 0.6}, gate, {"roc_auc": 0.95})[0]


def test_gate_overrides_from_the_command_line(bank_spec):
    gate = gate_from(bank_spec.gate, ["roc_auc=0.95", "f1=0.3"], tolerance=0.0)
    assert gate.thresholds == {"roc_auc": 0.95, "pr_auc": 0.45, "f1": 0.3}
    assert gate.tolerance == 0.0
    with pytest.raises(JobError, match="NAME=VALUE"):
        gate_from(bank_spec.gate, ["roc_auc"])
    with pytest.raises(JobError, match="NAME=VALUE"):
        gate_from(bank_spec.gate, ["roc_auc=high"])
    with pytest.raises(JobError, match="unknown metric.*'roc_acu'"):
        gate_from(bank_spec.gate, ["roc_acu=0.9"])


def test_local_writes_replace_files_whole(tmp_path):
    target = str(tmp_path / "champion.json")
    storage.write_bytes(target, b"old")
    storage.write_bytes(target, b"new")
    assert storage.read_bytes(target) == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["champion.json"]  # no temp file left
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "champion.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_loading_a_tampered_portable_model_fails_before_parsing(registry):
    _add_version(registry, "v1")
    registry.promote("v1", Gate())
    storage.write_bytes(storage.join(registry.version_uri("v1"), "portable/model.json"), b'{"weights": 1}')
    with pytest.raises(IntegrityError, match="portable/model.json of version v1 is corrupt"):
        registry.load_portable()


def test_two_writers_of_one_version_id_the_second_fails_at_once_naming_the_first(registry):
    with registry.staged("nightly-20261120", holder="scheduled__2026-11-20") as staging:
        storage.write_bytes(storage.join(staging, "metrics.json"), storage.dump_json(METRICS))
        with (
            pytest.raises(ClaimedError, match="is being written by scheduled__2026-11-20"),
            registry.staged("nightly-20261120", holder="manual__2026-11-20"),
        ):
            pass
        # The refused writer touched nothing of the first one's.
        assert storage.exists(storage.join(staging, "metrics.json"))
        storage.write_bytes(storage.join(staging, "portable/model.json"), b"{}")
        registry.commit("nightly-20261120", {"created_at": "2026-11-20T02:00:00Z"})
    assert registry.versions() == ["nightly-20261120"]


def test_any_later_run_removes_what_killed_runs_of_any_id_left(registry):
    storage.write_bytes(storage.join(registry.staging_uri("killed-1"), "metrics.json"), b"{}")
    storage.write_bytes(storage.join(registry.version_uri("half-copied"), "metrics.json"), b"{}")
    with registry.staged("busy", holder="run-busy") as busy:
        storage.write_bytes(storage.join(busy, "metrics.json"), b"{}")
        _add_version(registry, "v9")  # another id, while "busy" is being written
        assert not storage.exists(registry.staging_uri("killed-1"))
        assert not storage.exists(registry.version_uri("half-copied"))
        assert storage.exists(storage.join(busy, "metrics.json"))  # a live claim's staging stays


@pytest.mark.spark
def test_a_spark_model_missing_a_stage_is_not_committed(registry, trained_storage):
    model = trained_storage / "models" / "bank-marketing" / "versions" / "e2e-trained-1" / "spark_model"
    files = sorted(p for p in model.rglob("*") if p.is_file() and not p.name.endswith(".crc"))
    stage = next(p.parent.parent.name for p in files if "LogisticRegression" in str(p))
    with pytest.raises(RegistryError, match=f"incomplete.*lacks spark_model/stages/{stage}/data"):
        with registry.staged("torn") as staging:
            for path in files:
                rel = path.relative_to(model.parent).as_posix()
                if not rel.startswith(f"spark_model/stages/{stage}/data"):
                    storage.write_bytes(storage.join(staging, rel), path.read_bytes())
            registry.commit("torn", {"created_at": "2026-11-20T00:00:00Z"})
    assert registry.versions() == []


def test_two_promotions_at_once_lose_neither(registry, monkeypatch):
    """v3 is promoted between v2's read of the pointer and its write: v2's compare-and-swap fails
    and its gate runs again, against v3."""
    from spark_jobs.registry import store as registry_module

    _add_version(registry, "v1", METRICS | {"roc_auc": 0.80})
    registry.promote("v1", Gate())
    _add_version(registry, "v2", METRICS | {"roc_auc": 0.90})
    _add_version(registry, "v3", METRICS | {"roc_auc": 0.95})
    real, calls = registry_module.evaluate_gate, []

    def racing(metrics, gate, champion_metrics, *drift_and_champion):
        calls.append(champion_metrics["roc_auc"])
        if len(calls) == 1:
            assert registry.promote("v3", Gate(tolerance=0.0))["promoted"]
        return real(metrics, gate, champion_metrics, *drift_and_champion)

    monkeypatch.setattr(registry_module, "evaluate_gate", racing)
    decision = registry.promote("v2", Gate(tolerance=0.0))
    assert calls[0] == 0.80 and calls[-1] == 0.95  # judged again against v3
    assert not decision["promoted"] and decision["champion_before"] == "v3"
    assert registry.champion()["version"] == "v3"


def test_a_kill_between_gate_record_and_pointer_and_the_old_order_both_recover(registry):
    _add_version(registry, "v1")
    # Killed after writing the gate's record, before moving the pointer: a re-run moves it.
    storage.write_bytes(registry.decision_uri("v1"), storage.dump_json({"version": "v1", "promoted": True}))
    assert registry.champion() is None
    assert registry.promote("v1", Gate())["promoted"] and registry.champion()["version"] == "v1"
    # A pointer moved without a gate record (what the old order left): the record is written now.
    _add_version(registry, "v2")
    storage.write_bytes(registry.champion_uri, storage.dump_json({"version": "v2"}))
    assert registry.promote("v2", Gate())["reasons"] == ["already champion"]
    assert json.loads(storage.read_bytes(registry.decision_uri("v2")))["promoted"] is True


def test_skip_if_exists_with_promote_still_runs_the_gate(tmp_path, capsys):
    """A re-run of a night whose version is complete does not train again, but is still gated."""
    from spark_jobs.training import train
    from tests.conftest import BANK, handmade_version, train_args

    registry = handmade_version(tmp_path / "root", "nightly-20261120", promote=False)
    args = train_args(
        BANK, tmp_path / "root", "--version", "nightly-20261120", "--skip-if-exists", "--promote"
    )
    assert train.main([*args, "--min-metric", "roc_auc=0.5"]) == 0
    assert "already complete" in capsys.readouterr().out
    assert registry.champion()["version"] == "nightly-20261120"
    assert storage.exists(registry.decision_uri("nightly-20261120"))
