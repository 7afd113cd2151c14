# SPDX-License-Identifier: MIT
"""The sync holds no cache lock, and no other lock, across the network."""
import hashlib
import os
import time

import pytest

from helpers import SLOW, VALGRIND, cache_file, wait_for

# The daemon's SQLite busy timeout in these tests: a writer that waits
# longer than this for the write lock fails (-EBUSY), as one would after
# 10 s in real use.
# Short, so that a lookup stuck behind the list fails soon; under valgrind
# a sync's own transactions can take a second.
BUSY_MS = 1000 if SLOW == 1 else 5000


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
    # Long enough to outlast the lookup under valgrind too.
    stall = 4 if SLOW == 1 else 20
    emulator.add_fault(kind="stall", seconds=stall, path="^/users/list$")
    t, result = m.ctl_in_background("sync")
    try:
        # The stalled request has taken the fault: the list is under way.
        wait_for(lambda: not pending_faults(emulator), 20, "the stalled list")
        start = time.monotonic()
        st = os.stat(m.p("contacts", str(cid)))
        took = time.monotonic() - start
        assert t.is_alive(), "the stall ended before the lookup: no overlap"
        assert st.st_ino
        assert m.json("contacts", str(cid), "contact.json")["id"] == cid
        assert took < stall - 1, "the lookup waited %.1f s for the list" % took
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


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for %d" % pid)


def rss_follows_the_code(pid):
    """Whether the daemon's peak RSS measures its own allocations: a
    sanitizer keeps freed blocks in quarantine (ASan holds up to 256 MiB),
    and so does valgrind, so there every read's buffer would count."""
    if VALGRIND:
        return False
    with open("/proc/%d/maps" % pid) as f:
        return not any("libasan" in line for line in f)


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest(), f.tell()
            h.update(b)


BIG = 20 << 20     # past the 16 MiB an open file's snapshot may hold


def test_large_attachments_stream_to_their_files(emulator, mounts, tmp_path):
    # Three 20 MiB attachments in one conversation, the first attached
    # three times. The sync must stream each into its file once, not hold
    # them in memory: the daemon's peak RSS grows by far less than their
    # sum (60 MiB, 100 MiB with the repeats). Reads pread the file, on a
    # read-write and a read-only mount: they neither load it whole (a
    # file over 16 MiB failed with EIO) nor grow the RSS by its size.
    m = mounts(emulator.url, str(tmp_path / "rw"), opts=["timeout=30"])
    conv = emulator.data()["conversations"][0]["id"]
    msg = emulator.mutate(op="add_message", conversationId=conv,
                          body="<p>big files</p>",
                          attachments=[{"fileName": "big%d.bin" % i,
                                        "size": BIG + i}
                                       for i in range(3)])
    ids = [a["id"] for a in msg["attachments"]]
    for _ in range(2):
        emulator.mutate(op="add_message", conversationId=conv,
                        body="<p>again</p>", attachments=[{"id": ids[0]}])
    before = vm_hwm_kib(m.proc.pid)
    emulator.reset()
    m.ctl("sync")
    grown = vm_hwm_kib(m.proc.pid) - before
    print("peak RSS grew by %d KiB" % grown)
    gets = [r for r in emulator.requests()
            if r["path"].startswith("/attachments/")]
    assert sorted(r["path"] for r in gets) == sorted(
        "/attachments/%d/data" % i for i in ids), "one download per id"
    assert grown < 12 << 10, "peak RSS grew by %d KiB" % grown
    meta = emulator.data()["attachments"]

    def read_back(mount):
        before = vm_hwm_kib(mount.proc.pid)
        d = mount.p("conversations", str(conv), "attachments")
        for i, aid in enumerate(ids):
            name = "%d-big%d.bin" % (aid, i)
            assert os.stat(os.path.join(d, name)).st_size == BIG + i
            digest, size = sha256_of(os.path.join(d, name))
            assert size == BIG + i
            assert digest == meta[str(aid)]["sha256"]
            # A piece from the middle, as rsync --inplace or a viewer reads.
            with open(os.path.join(d, name), "rb") as f:
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
                assert len(os.pread(f.fileno(), 4096, BIG // 2)) == 4096
        grown = vm_hwm_kib(mount.proc.pid) - before
        print("reads grew the peak RSS by %d KiB" % grown)
        if rss_follows_the_code(mount.proc.pid):
            assert grown < 8 << 10, "reads grew the peak RSS by %d KiB" % grown

    read_back(m)
    m.unmount()
    read_back(mounts(emulator.url, str(tmp_path / "ro"), opts=["ro"],
                     cache_dir=m.cache, wait_sync=False))


def test_blob_files_are_tidied_after_a_crash(emulator, mounts, tmp_path):
    # What a crash can leave in blobs/: a download's temp file, a file
    # whose row never committed, a row whose file is gone. The next mount
    # removes the first two and fetches the third again.
    m = mounts(emulator.url, str(tmp_path / "a"))
    data = emulator.data()
    aid, a = next((k, v) for k, v in data["attachments"].items() if v["size"])
    blobs = os.path.join(os.path.dirname(cache_file(m)), "blobs")
    m.unmount()
    tmp = os.path.join(blobs, ".tmp-abc123")
    orphan = os.path.join(blobs, "99999999")
    for p in (tmp, orphan):
        with open(p, "wb") as f:
            f.write(b"left behind")
    os.unlink(os.path.join(blobs, aid))
    os.unlink(cache_file(m) + ".clean")      # as after a crash
    m2 = mounts(emulator.url, str(tmp_path / "b"), cache_dir=m.cache)
    assert not os.path.exists(tmp)
    assert not os.path.exists(orphan)
    d = m2.p("conversations", str(a["conversationId"]), "attachments")
    name = next(n for n in os.listdir(d) if n.startswith(aid + "-"))
    digest, size = sha256_of(os.path.join(d, name))
    assert (digest, size) == (a["sha256"], a["size"])
