"""Fixtures of the AWX tests; the helpers live in awxutil.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from awxutil import render_awx_config  # noqa: E402


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    return render_awx_config(tmp_path_factory.mktemp("awx"))
