"""Markers for the whole suite (registered in pyproject.toml): `e2e` on every test under
tests/e2e, set here; `slow` (over ~5 s: trains a model, scores with one, runs the demo or a
notebook) on each such test. `make test-fast` leaves both out."""

from __future__ import annotations

from pathlib import Path

import pytest

E2E = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)
