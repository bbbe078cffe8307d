"""Fixtures shared by every part's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from postroom.clock import ManualClock
from postroom.config import Config


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """The embedded default with its data directory in a temporary folder."""
    return Config(data_dir=tmp_path / "var")
