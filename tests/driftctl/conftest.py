# SPDX-License-Identifier: MIT
"""Fixtures for the driftctl tests: an emulator, a driftctl bound to it with
its own config and cache directories, and (where FUSE is there) a mount."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ctlkit import DRIFTCTL, Ctl  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if not os.path.exists(DRIFTCTL):
        skip = pytest.mark.skip(reason="SKIP: driftctl is not built (%s); run make"
                                % DRIFTCTL)
        for item in items:
            item.add_marker(skip)


@pytest.fixture
def ctl(emulator, tmp_path):
    return Ctl(emulator, tmp_path / "ctl")


@pytest.fixture
def ctl_token(ctl):
    """A driftctl whose credentials file holds the emulator's install token."""
    ctl.login_token()
    return ctl

