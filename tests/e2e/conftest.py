"""The e2e tests' shared fixtures live in tests/conftest.py; these names are re-exported."""

from __future__ import annotations

from tests.conftest import TRAINED_VERSION, copy_of, trained_storage

__all__ = ["TRAINED_VERSION", "copy_of", "trained_storage"]
