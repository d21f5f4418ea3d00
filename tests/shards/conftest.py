"""Fixtures of the corpus and shard tests."""

from __future__ import annotations

import pytest
from shard_testlib import ByteAdapter


@pytest.fixture
def byte_adapter():
    return ByteAdapter()
