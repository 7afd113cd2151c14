# SPDX-License-Identifier: MIT
"""driftctl and the one-org-per-cache rule (issue 10): sync and status use
the cache of the org the credentials belong to, online or offline, and a
running mount does not follow a login to another org."""
import os

import pytest

from helpers import TOKEN

OTHER_TOKEN = "org-b-install-token"
OTHER_ORG = 4242
MAIN_ORG = 1351205
TWO_ORGS = pytest.mark.emulator_args("--org", "%s=%d" % (OTHER_TOKEN, OTHER_ORG))


def api_ids(emulator, org, kind):
    data = emulator.admin("GET", "data?org=%d" % org)
    return {str(o["id"]) for o in data[kind]}


def conv_ids(m):
    return {n for n in os.listdir(m.p("conversations")) if n.isdigit()}


@TWO_ORGS
def test_sync_and_status_follow_the_org_of_the_login(ctl, emulator):
    ctl.secrets.add(OTHER_TOKEN)
    ctl.login_token(TOKEN)
    assert ctl.creds()["org_id"] == str(MAIN_ORG)
    assert ctl.run("sync").returncode == 0
    p, st = ctl.status()
    assert st["account"] == "org %d" % MAIN_ORG
    assert st["conversations"] == str(len(api_ids(emulator, MAIN_ORG, "conversations")))
    assert st["cache"].startswith(os.path.join(ctl.account_dir(), str(MAIN_ORG)) + " ")

    ctl.login_token(OTHER_TOKEN)
    assert ctl.creds()["org_id"] == str(OTHER_ORG)
    p = ctl.run("sync")
    assert p.returncode == 0, p.stderr
    p, st = ctl.status()
    assert st["account"] == "org %d" % OTHER_ORG
    assert st["conversations"] == str(len(api_ids(emulator, OTHER_ORG, "conversations")))
    assert st["users"] == str(len(api_ids(emulator, OTHER_ORG, "users")))

    # Offline, the org the login recorded picks the cache; A's is whole.
    emulator.reset()
    p, st = ctl.status("--offline")
    assert st["conversations"] == str(len(api_ids(emulator, OTHER_ORG, "conversations")))
    ctl.login_token(TOKEN)
    p, st = ctl.status("--offline")
    assert st["conversations"] == str(len(api_ids(emulator, MAIN_ORG, "conversations")))
    assert emulator.total() == 1    # the login's token_info, nothing else


@TWO_ORGS
def test_a_mount_keeps_its_org_when_the_login_changes(ctl, emulator, mounts, tmp_path):
    """`driftctl login` with another org's token while a mount runs: the
    mount must not sync that org into its cache; it says why instead."""
    ctl.secrets.add(OTHER_TOKEN)
    ctl.login_token(TOKEN)
    m = mounts(emulator.url, str(tmp_path / "m"), env={"DRIFT_TOKEN": ""},
               opts=["credentials=" + ctl.credentials],
               cache_dir=os.path.join(ctl.cache, "driftfs"))
    want = api_ids(emulator, MAIN_ORG, "conversations")
    assert conv_ids(m) == want

    ctl.login_token(OTHER_TOKEN)
    m.ctl("sync")
    assert conv_ids(m) == want
    errors = m.read(".driftfs", "errors", mode="r")
    assert str(OTHER_ORG) in errors and str(MAIN_ORG) in errors, errors
    # driftctl sync now means org B: its own cache, not the mount's.
    p = ctl.run("sync")
    assert p.returncode == 0, p.stderr
    assert b"done by the mount" not in p.stderr
    p, st = ctl.status()
    assert st["conversations"] == str(len(api_ids(emulator, OTHER_ORG, "conversations")))
    assert st["mount"] == "none"
    assert conv_ids(m) == want


def test_status_asks_token_info_once(ctl_token, emulator):
    emulator.reset()
    p, st = ctl_token.status()
    assert st["account"] == "org %d" % MAIN_ORG
    asked = [r for r in emulator.requests() if r["path"] == "/app/token_info"]
    assert len(asked) == 1, asked
