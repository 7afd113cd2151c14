# SPDX-License-Identifier: MIT
"""The sync holds no cache lock, and no other lock, across the network."""
import os
import threading
import time

import pytest

from helpers import wait_for

# The daemon's SQLite busy timeout in these tests: a writer that waits
# longer than this for the write lock fails (-EBUSY), as one would after
# 10 s in real use.
BUSY_MS = 1000


def uncached_contact(emulator):
    data = emulator.data()
    in_convs = {c["contactId"] for c in data["conversations"]}
    return next(c["id"] for c in data["contacts"] if c["id"] not in in_convs)


def pending_faults(emulator):
    return emulator.admin("GET", "faults")["pending"]


def test_lookup_while_the_user_list_stalls(emulator, mounts, tmp_path):
    # The users list answers only after 4 s (several busy timeouts). A
    # lookup of an uncached contact meanwhile needs the cache's write lock
    # to store it: it must not wait behind the list.
    m = mounts(emulator.url, str(tmp_path),
               env={"DRIFTFS_TEST_BUSY_MS": str(BUSY_MS)})
    cid = uncached_contact(emulator)
    assert str(cid) not in os.listdir(m.p("contacts"))
    emulator.add_fault(kind="stall", seconds=4, path="^/users/list$")
    result = {}

    def sync():
        try:
            m.ctl("sync")
            result["ok"] = True
        except OSError as e:
            result["err"] = e
    t = threading.Thread(target=sync)
    t.start()
    try:
        # The stalled request has taken the fault: the list is under way.
        wait_for(lambda: not pending_faults(emulator), 20, "the stalled list")
        start = time.monotonic()
        st = os.stat(m.p("contacts", str(cid)))
        took = time.monotonic() - start
        assert t.is_alive(), "the stall ended before the lookup: no overlap"
        assert st.st_ino
        assert m.json("contacts", str(cid), "contact.json")["id"] == cid
        assert took < 3, "the lookup waited %.1f s for the list" % took
    finally:
        t.join(60)
    assert result.get("ok"), result
    errors = m.read(".driftfs", "errors", mode="r")
    assert "locked" not in errors, errors


def stats(m):
    return {k: int(v) for k, v in (line.rsplit(" ", 1) for line in
            m.read(".driftfs", "stats", mode="r").splitlines())}


@pytest.mark.emulator_args("--conversations", "150", "--messages", "10")
def test_notifier_cost_follows_the_changes(emulator, mounts, tmp_path):
    # After a traversal the kernel holds thousands of nodes. One changed
    # conversation must cost the notifier the few nodes it touches (and
    # no SQLite query per cached node), not a visit of every node.
    m = mounts(emulator.url, str(tmp_path))
    nodes = sum(len(ds) + len(fs) for _, ds, fs in os.walk(m.path))
    assert nodes > 2500, nodes
    before = stats(m)
    conv = emulator.data()["conversations"][0]["id"]
    msg = emulator.mutate(op="add_message", conversationId=conv,
                          body="<p>one change</p>")
    m.ctl("sync")
    # The notifier has run once the new message shows in the listing the
    # kernel kept (it invalidates that directory after counting).
    wait_for(lambda: "%d.json" % msg["id"] in
             os.listdir(m.p("conversations", str(conv), "messages")),
             30, "the new message to be listed")
    after = stats(m)
    visits = after.get("notifier visits", 0) - before.get("notifier visits", 0)
    queries = (after.get("notifier queries", 0) -
               before.get("notifier queries", 0))
    print("notifier: %d visits, %d queries, %d nodes" % (visits, queries, nodes))
    assert 0 < visits < 150, (visits, nodes)
    assert queries < 40, (queries, nodes)
