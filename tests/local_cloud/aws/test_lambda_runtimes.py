"""Which interpreter a Lambda runtime runs on: the real binary, never a wrapper that needs a shell."""

from __future__ import annotations

import os
import subprocess

from local_cloud.aws.awslambda.runtimes import find_interpreter


def test_a_wrapper_on_path_is_resolved_to_the_interpreter_behind_it(tmp_path, monkeypatch):
    """pyenv's shims answer only in a shell that selects their version; a sandbox starts with a
    bare PATH and no PYENV_VERSION, so the runtime records the binary the wrapper ran."""
    real = find_interpreter("3.12")
    shim = tmp_path / "python3.12"
    shim.write_text(f'#!/bin/sh\nexec {real} "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    found = find_interpreter("3.12")

    assert found != str(shim) and os.path.realpath(found) == os.path.realpath(real)
    version = subprocess.run([found, "-I", "-c", "import sys; print(sys.version_info[:2])"],
                             env={}, capture_output=True, text=True, check=True)  # fmt: skip
    assert version.stdout.strip() == "(3, 12)"
