# SPDX-License-Identifier: MIT
"""What one open file holds in the daemon, on a real mount: handles of
scratch files, two threads on one descriptor, the bytes a write may
carry (no NUL), and appends (>>) to files whose size is not their
buffer's."""
import errno
import json
import os
import subprocess
import threading
import time

import pytest


def requests_after(emulator, seq, method=None):
    return [r for r in emulator.requests()
            if r["seq"] > seq and (method is None or r["method"] == method)]


def last_seq(emulator):
    reqs = emulator.requests()
    return reqs[-1]["seq"] if reqs else 0


def test_scratch_files_left_at_unmount_are_freed(mounts, emulator, tmp_path):
    """A scratch file still named at unmount is freed by the daemon (the
    kernel sends no FORGET after the session ends); an O_EXCL create of
    an existing name is refused by the kernel's own lookup. The mounts
    fixture fails on any sanitizer or valgrind report at unmount."""
    m = mounts(emulator.url, str(tmp_path))
    cid = str(emulator.data()["conversations"][0]["id"])
    d = m.p("conversations", cid)
    for name in ("draft.txt", "draft.txt~", ".draft.swp"):
        fd = os.open(os.path.join(d, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.write(fd, b"kept in memory\n")
        os.close(fd)
    for name in ("draft.txt", "reply", "conversation.json"):
        with pytest.raises(OSError) as e:
            os.open(os.path.join(d, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        assert e.value.errno == errno.EEXIST
    with open(os.path.join(d, "draft.txt"), "rb") as f:
        assert f.read() == b"kept in memory\n"
    m.unmount()
    assert not m.suspicious()


def test_read_and_write_race_on_one_descriptor(mount, emulator):
    """Two threads on one O_RDWR descriptor of contact.json (direct I/O,
    so every read reaches the daemon): one reads while the other grows
    the buffer (reallocating it) and truncates it. A read replied from
    the buffer after dropping its lock read freed memory (ASan:
    heap-use-after-free; the daemon aborts). Every read must see bytes
    the file held, and the file ends as it began: nothing is sent."""
    c = emulator.data()["conversations"][0]["contactId"]
    p = mount.p("contacts", str(c), "contact.json")
    orig = mount.read("contacts", str(c), "contact.json")
    seq = last_seq(emulator)
    bad = []
    deadline = time.monotonic() + 8
    rounds = 0
    while time.monotonic() < deadline and not bad:
        rounds += 1
        fd = os.open(p, os.O_RDWR)
        stop = threading.Event()

        def reader():
            try:
                while not stop.is_set():
                    for off in (0, 4096, 65536):
                        got = os.pread(fd, 131072, off)
                        # Only what the writer put there: the original
                        # bytes, or 'x' filler.
                        if got not in (orig[off:off + len(got)],
                                       b"x" * len(got)):
                            bad.append(("read", off, got[:40]))
                            return
            except OSError as e:
                bad.append(("read", e))
        t = threading.Thread(target=reader)
        t.start()
        try:
            size = 4096
            while size <= (1 << 20):
                os.ftruncate(fd, 0)
                os.pwrite(fd, b"x" * size, 0)
                size *= 2
            os.ftruncate(fd, 0)
            os.pwrite(fd, orig, 0)
        except OSError as e:
            bad.append(("write", e))
        finally:
            stop.set()
            t.join()
            os.close(fd)
    assert not bad, bad
    assert mount.proc.poll() is None, "the daemon died: %s" % mount.suspicious()
    assert requests_after(emulator, seq, "PATCH") == []
    assert mount.read("contacts", str(c), "contact.json") == orig
    assert rounds > 1
