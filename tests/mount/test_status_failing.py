# SPDX-License-Identifier: MIT
""".driftfs/status says so when the API answers but fails (DESIGN.md §3:
"With the network down or the API failing, reads keep being served from
the cache ... .driftfs/status says so"): a call that ends in 503 after its
retries gives "offline (API failing: HTTP 503; ...)" (first word offline,
as scripts read it) while reads come from the cache, and the next success
gives "online" again."""
import errno
import os

import pytest


def test_status_says_api_failing_and_recovers(mount, emulator):
    data = emulator.data()
    conv = data["conversations"][0]
    in_convs = {c["contactId"] for c in data["conversations"]}
    cid = next(c["id"] for c in data["contacts"] if c["id"] not in in_convs)
    assert mount.status()["state"] == "online"
    emulator.add_fault(kind="status", status=503, count=100,
                       path="/contacts/[0-9]+$")
    try:
        with pytest.raises(OSError) as e:
            os.stat(mount.p("contacts", str(cid)))
        assert e.value.errno in (errno.EIO, errno.EAGAIN)
        st = mount.status()
        assert st["state"].split()[0] == "offline"
        assert st["state"].startswith("offline (API failing: HTTP 503"), st
        # Reads are still served, from the cache.
        assert mount.json("conversations", str(conv["id"]),
                          "conversation.json") == conv
    finally:
        emulator.clear_faults()
    assert mount.json("contacts", str(cid), "contact.json")["id"] == cid
    assert mount.status()["state"] == "online"
