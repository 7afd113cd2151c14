# SPDX-License-Identifier: MIT
"""Fixtures for the mount tests: an emulator and a driftfs mount of it."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import Mount, fuse_unavailable  # noqa: E402


def pytest_collection_modifyitems(config, items):
    why = fuse_unavailable()
    if why:
        skip = pytest.mark.skip(reason="SKIP: " + why)
        for item in items:
            item.add_marker(skip)


@pytest.fixture
def mount(emulator, tmp_path):
    """A driftfs mount of the emulator, synced once. A POST that may have
    landed is checked after 1 s, not the 20 s grace period (a test of the
    grace period sets its own)."""
    os.makedirs(tmp_path / "emu", exist_ok=True)
    m = Mount(emulator.url, str(tmp_path),
              env={"DRIFTFS_TEST_LANDED_GRACE_MS": "1000"})
    yield m
    m.unmount()
    bad = m.suspicious()
    assert not bad, "driftfs reported: %s" % bad
