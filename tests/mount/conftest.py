# SPDX-License-Identifier: MIT
"""Fixtures for the mount tests: an emulator and a driftfs mount of it."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import Emulator, Mount, fuse_unavailable  # noqa: E402


def pytest_collection_modifyitems(config, items):
    why = fuse_unavailable()
    if why:
        skip = pytest.mark.skip(reason="SKIP: " + why)
        for item in items:
            item.add_marker(skip)


@pytest.fixture
def emulator(request, tmp_path):
    """The emulator, started with the test's emulator_args marker, if any."""
    marker = request.node.get_closest_marker("emulator_args")
    args = marker.args if marker else ()
    emu = Emulator(*args, workdir=str(tmp_path / "emu"))
    yield emu
    emu.stop()


@pytest.fixture
def mount(emulator, tmp_path):
    """A driftfs mount of the emulator, synced once."""
    os.makedirs(tmp_path / "emu", exist_ok=True)
    m = Mount(emulator.url, str(tmp_path))
    yield m
    m.unmount()
    bad = m.suspicious()
    assert not bad, "driftfs reported: %s" % bad


def pytest_configure(config):
    config.addinivalue_line("markers", "emulator_args(*args): emulator flags")
