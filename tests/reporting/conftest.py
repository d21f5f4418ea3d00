"""Fixtures of the report-stage tests (helpers in report_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fixtures import write_train_folder


@pytest.fixture
def train_folders(tmp_path) -> dict[str, Path]:
    """vanilla resumed once at step 6, patok never interrupted."""
    return {"vanilla": write_train_folder(tmp_path / "fam" / "vanilla" / "train"),
            "patok": write_train_folder(tmp_path / "fam" / "patok" / "train", loss0=11.0, resume_at=None)}
