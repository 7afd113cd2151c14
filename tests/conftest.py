# SPDX-License-Identifier: MIT
"""What the mount and driftctl tests share: helpers on the path, the
emulator_args marker, and the emulator fixture."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import Emulator, make_test_pki, openssl_unavailable  # noqa: E402


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
