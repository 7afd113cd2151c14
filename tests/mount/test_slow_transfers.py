# SPDX-License-Identifier: MIT
"""Streamed attachments are bounded by their progress, not by `timeout`."""
import hashlib
import os
import time

from helpers import SLOW, wait_for

TIMEOUT = 2          # the mount's timeout= in these tests, in seconds
# The stalled test's: each of its tries ends after this long without
# progress, five tries in all (2 s each made it 13 s). Under valgrind the
# common one.
STALL_TIMEOUT = 1 if SLOW == 1 else TIMEOUT


def add_attachment(emulator, size):
    """A new message with one attachment of size bytes: (conv, id)."""
    conv = emulator.data()["conversations"][0]["id"]
    msg = emulator.mutate(op="add_message", conversationId=conv,
                          body="<p>a file</p>",
                          attachments=[{"fileName": "slow.bin",
                                        "size": size}])
    return conv, msg["attachments"][0]["id"]


def downloads(emulator, aid):
    return [r for r in emulator.requests()
            if r["path"] == "/attachments/%d/data" % aid]


def test_a_slow_attachment_arrives_whole(emulator, mounts, tmp_path):
    # 1 MiB at 256 KiB/s takes 4 s, twice the mount's timeout=, but keeps
    # moving: it must arrive, whole, in one try. Every try is slowed, so
    # a whole-transfer timeout of `timeout` fails them all.
    m = mounts(emulator.url, str(tmp_path), opts=["timeout=%d" % TIMEOUT])
    conv, aid = add_attachment(emulator, 1 << 20)
    emulator.add_fault(kind="throttle", path="^/attachments/%d/data$" % aid,
                       bytes_per_second=256 << 10, count=10)
    emulator.reset()
    start = time.monotonic()
    m.ctl("sync")
    took = time.monotonic() - start
    assert took > 2 * TIMEOUT, "the download was not slowed: %.1f s" % took
    assert len(downloads(emulator, aid)) == 1, downloads(emulator, aid)
    meta = emulator.data()["attachments"][str(aid)]
    d = m.p("conversations", str(conv), "attachments")
    name = next(n for n in os.listdir(d) if n.startswith("%d-" % aid))
    with open(os.path.join(d, name), "rb") as f:
        data = f.read()
    assert len(data) == meta["size"]
    assert hashlib.sha256(data).hexdigest() == meta["sha256"]


def test_a_stalled_attachment_still_fails_within_a_bound(emulator, mounts,
                                                         tmp_path):
    # The first 256 bytes, then nothing for a minute, on every try: each try
    # must end once `timeout` seconds pass without progress, and the sync
    # give up on the file after its few tries, not wait out the stall.
    m = mounts(emulator.url, str(tmp_path), opts=["timeout=%d" % STALL_TIMEOUT])
    conv, aid = add_attachment(emulator, 256 << 10)
    emulator.add_fault(kind="throttle", path="^/attachments/%d/data$" % aid,
                       bytes_per_second=1 << 20, stall_after=256,
                       seconds=60, count=10)
    emulator.reset()
    start = time.monotonic()
    try:
        m.ctl("sync")
    except OSError:
        pass                    # the pass may report the failed file
    took = time.monotonic() - start
    # The stalled replies are logged only once they end: count the tries
    # by the faults they used up.
    pending = emulator.admin("GET", "faults")["pending"]
    tries = 10 - (pending[0]["count"] if pending else 0)
    print("stalled: %d tries, %.1f s" % (tries, took))
    assert 1 <= tries <= 5, tries
    assert took < 40, "the stalled download held the sync %.1f s" % took
    wait_for(lambda: "/attachments/%d/data" % aid in
             m.read(".driftfs", "errors", mode="r"), 10,
             "the failed download in .driftfs/errors")


def test_an_attachment_over_the_cap_is_refused_once(emulator, mounts,
                                                    tmp_path):
    # 64 MiB is the cap: one byte more is refused from its Content-Length
    # (CURLOPT_MAXFILESIZE), in one try, not retried as a slow transfer.
    # (The emulator takes seconds to make 64 MiB before it answers.)
    m = mounts(emulator.url, str(tmp_path), opts=["timeout=30"])
    conv, aid = add_attachment(emulator, (64 << 20) + 1)
    emulator.reset()
    try:
        m.ctl("sync")
    except OSError:
        pass
    wait_for(lambda: len(downloads(emulator, aid)) >= 1, 10, "the download")
    errors = m.read(".driftfs", "errors", mode="r")
    assert len(downloads(emulator, aid)) == 1, errors
    assert "larger than 67108864 bytes" in errors, errors
    d = m.p("conversations", str(conv), "attachments")
    assert not [n for n in os.listdir(d) if n.startswith("%d-" % aid)]
