# SPDX-License-Identifier: MIT
"""A read-only mount (-o ro): the kernel opens its files without asking
driftfs (no OPEN, FLUSH or RELEASE), so every read arrives without a file
handle. The tree must read exactly as on a read-write mount, change when the
sync changes it, and refuse every write."""
import errno
import os
import re
import signal

import pytest

from helpers import DYNAMIC, tree, wait_for


def served(m):
    """(file opens, reads without an open) that an unmounted daemon logged."""
    found = re.findall(r"served (\d+) file opens and (\d+) reads without an open",
                       m.logtext())
    assert found, m.logtext()
    return tuple(int(x) for x in found[-1])


@pytest.mark.emulator_args("--big-conversation", "6000")
def test_read_only_mount_reads_as_read_write(emulator, mounts, tmp_path):
    # One cache, mounted read-write and then read-only: the same rows
    # must read as the same bytes both ways.
    cache = str(tmp_path / "cache")
    rw = mounts(emulator.url, str(tmp_path / "rw"), cache_dir=cache)
    # A pass that timed out on some conversations (valgrind on a loaded
    # machine) leaves them to the next one, which the read-only mount's
    # first pass then is: the walks would differ by what it fetched.
    for _ in range(5):
        if rw.status().get("last_result") == "ok":
            break
        try:
            rw.ctl("sync")
        except OSError:
            pass
    assert rw.status().get("last_result") == "ok", rw.status()
    a = tree(rw.path)
    rw.unmount()
    nfiles = sum(isinstance(v, bytes) for v in a.values())
    assert served(rw)[0] >= nfiles
    ro = mounts(emulator.url, str(tmp_path / "ro"), opts=["ro"], cache_dir=cache)
    b = tree(ro.path)
    assert sorted(a) == sorted(b)
    for rel in a:
        assert a[rel] == b[rel], rel
    # The big transcript is read by the kernel in several pieces, each a
    # request without a handle; they must join up to the same bytes.
    msgs = emulator.data()["messages"]
    big = max(msgs, key=lambda c: len(msgs[c]))
    rel = os.path.join("conversations", big, "transcript.txt")
    assert len(b[rel]) > 512 * 1024
    # Read again from the middle, after the first read's pages are dropped.
    assert len(b[rel]) == os.stat(ro.p(rel)).st_size
    fd = os.open(ro.p(rel), os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        mid = len(b[rel]) // 2
        assert os.pread(fd, 100000, mid) == a[rel][mid:mid + 100000]
    finally:
        os.close(fd)
    for rel in DYNAMIC:
        assert os.stat(ro.p(rel)).st_size == len(ro.read(rel))
    # The read-write mount opened files; the read-only one never did.
    ro.unmount()
    opens, unopened = served(ro)
    assert opens == 0
    # (Empty files need no read: the kernel knows their size.)
    assert unopened >= sum(isinstance(v, bytes) and len(v) > 0 for v in b.values())


def test_read_only_mount_refuses_writes(emulator, mounts, tmp_path):
    m = mounts(emulator.url, str(tmp_path / "ro"), opts=["ro"])
    data = emulator.data()
    contact = m.p("contacts", str(data["conversations"][0]["contactId"]))
    conv = m.p("conversations", str(data["conversations"][0]["id"]))
    seq = max([r["seq"] for r in emulator.requests()] or [0])
    attempts = [
        lambda: open(os.path.join(contact, "contact.json"), "w"),
        lambda: open(os.path.join(contact, "contact.json"), "r+"),
        lambda: open(os.path.join(conv, "reply"), "a"),
        lambda: open(m.p(".driftfs", "ctl"), "w"),
        lambda: open(m.p("contacts", "new"), "w"),
        lambda: os.unlink(os.path.join(contact, "contact.json")),
        lambda: os.rmdir(contact),
        lambda: os.mkdir(m.p("contacts", "scratch")),
        lambda: open(os.path.join(conv, ".scratch.swp"), "w"),
        lambda: os.truncate(os.path.join(contact, "contact.json"), 0),
    ]
    for attempt in attempts:
        with pytest.raises(OSError) as e:
            attempt()
        assert e.value.errno == errno.EROFS
    writes = [r for r in emulator.requests()
              if r["seq"] > seq and r["method"] != "GET"]
    assert writes == []
    # Reading the files that take writes on a read-write mount works.
    assert open(os.path.join(conv, "reply"), "rb").read() == b""
    assert open(m.p(".driftfs", "ctl"), "rb").read() == b""


def test_read_only_mount_follows_the_sync(emulator, mounts, tmp_path):
    m = mounts(emulator.url, str(tmp_path / "ro"), opts=["ro"])
    cid = emulator.data()["conversations"][0]["id"]
    rel = ("conversations", str(cid), "transcript.txt")
    before = m.read(*rel, mode="r")
    status = m.read(".driftfs", "status", mode="r")
    assert "sync_passes: 1\n" in status
    emulator.mutate(op="add_message", conversationId=cid,
                    body="<p>read-only but not stale</p>", authorType="contact")
    # SIGUSR1 asks for a pass (the ctl file cannot be written here).
    os.kill(m.proc.pid, signal.SIGUSR1)
    # The status file is read through the page cache here: it must still
    # show each new pass, since its mtime moves with its content.
    m.wait_synced(passes=2)
    assert "sync_passes: 2\n" in m.read(".driftfs", "status", mode="r")
    # The cached transcript was invalidated, and is rendered anew.
    wait_for(lambda: "read-only but not stale" in m.read(*rel, mode="r"), 10,
             "the new message in the transcript")
    after = m.read(*rel, mode="r")
    assert after.startswith(before)
    assert os.stat(m.p(*rel)).st_size == len(after.encode())
