# SPDX-License-Identifier: MIT
"""What the mount and driftctl tests share: helpers on the path, the
emulator_args marker, and the emulator, pki and mounts fixtures."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import (Emulator, Mount, fuse_unavailable, make_test_pki,  # noqa: E402
                     openssl_unavailable)


def pytest_configure(config):
    config.addinivalue_line("markers", "emulator_args(*args): emulator flags")


@pytest.fixture
def emulator(request, tmp_path):
    """The emulator, started with the test's emulator_args marker, if any."""
    marker = request.node.get_closest_marker("emulator_args")
    args = marker.args if marker else ()
    emu = Emulator(*args, workdir=str(tmp_path / "emu"))
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A throwaway CA and server certificates (helpers.make_test_pki)."""
    why = openssl_unavailable()
    if why:
        pytest.skip("SKIP: " + why)
    return make_test_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture
def mounts(tmp_path):
    """Makes mounts (skipped without FUSE); always unmounts them, then
    fails on any crash or sanitizer report in their logs."""
    why = fuse_unavailable()
    if why:
        pytest.skip("SKIP: " + why)
    made = []

    def make(*args, **kw):
        m = Mount(*args, **kw)
        made.append(m)
        return m
    yield make
    for m in made:
        m.unmount()
    for m in made:
        bad = m.suspicious()
        assert not bad, "driftfs reported: %s" % bad
