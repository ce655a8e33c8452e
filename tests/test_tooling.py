"""The checks a commit hook runs are the checks CI runs (`make lint`)."""

from __future__ import annotations

import re

import yaml

from tests.conftest import ROOT


def test_the_commit_hooks_run_make_lints_commands_and_no_others():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe, "the Makefile has no lint target"
    lint = [line.strip().replace("$(VENV)", ".venv") for line in recipe.group(1).splitlines()]
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert [hook["entry"] for hook in hooks] == lint
    # The whole tree, as make lint checks it, not only the files a commit touches.
    assert all(hook["pass_filenames"] is False for hook in hooks)
