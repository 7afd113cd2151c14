# SPDX-License-Identifier: MIT
"""The fault matrix: every way the API can fail, against a live mount.

For each case the same outcome is asserted: the operation ends within its
deadline (no hang), the daemon is alive and the mount answers, the error is
named in .driftfs/errors, and once the API is healthy again the cache holds
exactly the API's data; after unmount, cache.db passes PRAGMA integrity_check.

The mounts use timeout=2, so one API call gives up after 3 x 2 s (http.c's
deadline); an operation of one object makes a few calls, one at a time.
"""
import errno
import os
import re
import signal
import threading
import time

import pytest

from helpers import SLOW, Emulator, Mount, cache_file, integrity, wait_for

# Under valgrind (SLOW > 1) the daemon itself is 10-50 times slower: the
# deadlines are longer so that a healthy call still fits in one.
TIMEOUT = 2 if SLOW == 1 else 6    # the mount's timeout= option, in seconds
DEADLINE = 3 * TIMEOUT             # one API call, retries included (http.c)
SLACK = 4 * SLOW                   # an attempt in flight at the deadline, and the rest

CONV = r"^/conversations/\d+$"
MSGS = r"^/conversations/\d+/messages$"
LIST = r"^/conversations/list$"
HUGE_BODY = (32 << 20) + (1 << 20)     # past http.c's DEFAULT_MAX_BODY (32 MiB)


def nested(depth):
    return "[" * depth + "]" * depth


# name: (faults to add, where the fault bites, the operation succeeds?,
#        regex expected in the new lines of .driftfs/errors)
# "conv" operations are "sync conversations/<id>" of the conversation with
# 137 messages (3 pages); "first" is the first sync at mount (two pages of
# conversations). Wrong shapes answer where the client expects a message page
# or a conversation.
CASES = {
    "429 with Retry-After, then ok": (
        [dict(kind="burst429", count=2, retry_after=1, path=MSGS)],
        "conv", True, None),
    "429 with Retry-After, persistent": (
        [dict(kind="burst429", count=1000, retry_after=1, path=MSGS)],
        "conv", False, r"messages: HTTP 429"),
    "429 without Retry-After, persistent": (
        [dict(kind="burst429", count=1000, retry_after=None, path=MSGS)],
        "conv", False, r"messages: HTTP 429"),
    "429 with Retry-After past the deadline": (
        [dict(kind="burst429", count=1, retry_after=DEADLINE + 3, path=MSGS)],
        "conv", False, r"messages: (HTTP 429|deadline passed)"),
    "500": ([dict(kind="status", status=500, count=1000, path=CONV)],
            "conv", False, r"GET /conversations/\d+: HTTP 500"),
    "502": ([dict(kind="status", status=502, count=1000, path=CONV)],
            "conv", False, r"GET /conversations/\d+: HTTP 502"),
    "503 twice, then ok": ([dict(kind="status", status=503, count=2, path=MSGS)],
                           "conv", True, None),
    "503": ([dict(kind="status", status=503, count=1000, path=MSGS)],
            "conv", False, r"messages: HTTP 503"),
    "504": ([dict(kind="status", status=504, count=1000, path=MSGS)],
            "conv", False, r"messages: HTTP 504"),
    "stall past the deadline": (
        [dict(kind="stall", seconds=DEADLINE + 4, count=1000, path=CONV)],
        "conv", False, r"GET /conversations/\d+: .*(imeout|timed out)"),
    "reset before the reply": ([dict(kind="reset", count=1000, path=CONV)],
                               "conv", False, r"GET /conversations/\d+: "),
    "reset mid-body": ([dict(kind="reset_mid_body", count=1000, path=MSGS)],
                       "conv", False, r"messages: "),
    "truncated body": ([dict(kind="truncate", count=1000, path=MSGS)],
                       "conv", False, r"messages: "),
    "malformed JSON": ([dict(kind="malformed", count=1000, path=CONV)],
                       "conv", False, r"malformed JSON"),
    "object where a list is expected": (
        [dict(kind="body", body='{"data":{"messages":{"id":1}}}', count=1000,
              path=MSGS)], "conv", False, r"messages"),
    # An item without an id is skipped with an error line; the rest of the
    # page is used (here: nothing else), until the next good answer.
    "messages without ids": (
        [dict(kind="body", body='{"data":{"messages":[{"body":"x",'
              '"createdAt":1}]}}', count=1, path=MSGS)],
        "conv", True, r"messages: unexpected response shape: message without an id"),
    "ids past 64 bits": (
        [dict(kind="body", body='{"data":{"id":123456789012345678901234567890,'
              '"contactId":1,"createdAt":1,"updatedAt":1,"status":"open"}}',
              count=1000, path=CONV)], "conv", False, r"/conversations/\d+"),
    "numbers past any double": (
        [dict(kind="body", body='{"data":{"id":1e999999,"contactId":-1e999999,'
              '"createdAt":1e400,"updatedAt":1,"status":"open"}}',
              count=1000, path=CONV)], "conv", False, r"/conversations/\d+"),
    "100k nested arrays": (
        [dict(kind="body", body=nested(100000), count=1000, path=CONV)],
        "conv", False, r"/conversations/\d+"),
    "paging cursor that repeats (messages)": (
        [dict(kind="repeat_cursor", count=1000, path=MSGS)],
        "conv", False, r"paging cursor repeats"),
    "duplicate ids across pages (messages)": (
        [dict(kind="rewind", by=20, skip=1, count=1, path=MSGS)],
        "conv", True, None),
    "response past the size cap": (
        [dict(kind="huge", bytes=HUGE_BODY, count=1000, path=CONV)],
        "conv", False, r"larger than \d+ bytes"),
    "paging cursor that repeats (conversation list)": (
        [dict(kind="repeat_cursor", count=1000, path=LIST)],
        "first", False, r"paging cursor repeats"),
    "duplicate ids across pages (conversation list)": (
        [dict(kind="rewind", by=10, skip=1, count=1, path=LIST)],
        "first", True, None),
}




def errors(m):
    return m.read(".driftfs", "errors", mode="r").splitlines()


def assert_alive(m):
    assert m.proc.poll() is None, "the daemon died: %s" % m.logtext()[-2000:]
    assert "conversations" in os.listdir(m.path)
    assert m.status()["state"]


def assert_matches_api(m, emulator, conv=None):
    """The mount shows the API's conversations (and conv's messages)."""
    data = emulator.data()
    listed = {int(n) for n in os.listdir(m.p("conversations")) if n.isdigit()}
    assert listed == {c["id"] for c in data["conversations"]}
    for c in data["conversations"]:
        assert m.json("conversations", str(c["id"]), "conversation.json") == c
    if conv:
        want = {"%d.json" % x["id"] for x in data["messages"][str(conv)]}
        got = set(os.listdir(m.p("conversations", str(conv), "messages")))
        assert {n for n in got if n.endswith(".json")} == want


def biggest_conversation(emulator):
    data = emulator.data()
    conv = max(data["conversations"],
               key=lambda c: len(data["messages"][str(c["id"])]))["id"]
    assert len(data["messages"][str(conv)]) > 100     # three pages
    return conv


# A small account keeps each case's first sync short; it still has the
# conversation of 137 messages. The "first" cases need the default one: 60
# conversations are two pages of the list.
SMALL = ("--conversations", "12", "--contacts", "15", "--attachments", "4")


@pytest.mark.parametrize("case", [
    pytest.param(name, marks=pytest.mark.emulator_args(
        *(() if where == "first" else SMALL)))
    for name, (_, where, _, _) in CASES.items()])
def test_fault(case, emulator, tmp_path):
    faults, where, succeeds, expect = CASES[case]
    conv = biggest_conversation(emulator)
    opts = ["timeout=%d" % TIMEOUT]
    if where == "first":
        for f in faults:
            emulator.add_fault(**f)
        t0 = time.monotonic()
        m = Mount(emulator.url, str(tmp_path), opts=opts, wait_sync=False)
    else:
        m = Mount(emulator.url, str(tmp_path), opts=opts)
    try:
        if where == "first":
            m.wait_synced(timeout=120)
            elapsed = time.monotonic() - t0
            result = m.status()["last_result"]
            ok = result == "ok"
            # A pass is many calls; each gives up within its own deadline.
            assert elapsed < 60 * SLOW, elapsed
        else:
            before = len(errors(m))
            for f in faults:
                emulator.add_fault(**f)
            t0 = time.monotonic()
            try:
                m.ctl("sync conversations/%d" % conv)
                ok, err = True, 0
            except OSError as e:
                ok, err = False, e.errno
            elapsed = time.monotonic() - t0
            # Up to four calls (conversation, message pages), one at a time;
            # only the faulted one waits.
            assert elapsed < DEADLINE + SLACK, "%s took %.1f s" % (case, elapsed)
            if not ok:
                assert err in (errno.EIO, errno.EAGAIN, errno.EPROTO,
                               errno.EBADMSG, errno.EFBIG, errno.ETIMEDOUT), err
        assert ok == succeeds, (case, m.status(), errors(m)[-5:])
        assert_alive(m)
        if expect:
            new = errors(m) if where == "first" else errors(m)[before:]
            assert any(re.search(expect, line) for line in new), new
        # The API is healthy again: one more sync and the cache is right.
        emulator.clear_faults()
        # A Retry-After is honoured (capped at 60 s) even past the fault.
        wait_for(lambda: "paused by 429" not in m.status()["rate_limit"], 60,
                 "the 429 pause to end")
        m.ctl("sync conversations/%d" % conv)
        m.ctl("sync")
        assert_matches_api(m, emulator, conv)
    finally:
        m.unmount()
    assert not m.suspicious(), m.suspicious()
    assert integrity(cache_file(m)) == [("ok",)]


def test_emulator_killed_mid_sync_then_back_on_the_same_port(emulator, tmp_path):
    m = Mount(emulator.url, str(tmp_path), opts=["timeout=%d" % TIMEOUT])
    emu2 = None
    try:
        data = emulator.data()
        port = emulator.port
        # A pass at 150 ms a request takes seconds: kill the API during it.
        # (Slowed only now: the first sync at that pace took 8 s.)
        emulator.faults(latency_ms=150)
        res = {}

        def sync():
            try:
                m.ctl("sync")
                res["r"] = 0
            except OSError as e:
                res["r"] = e.errno
        seq = emulator.total()
        t = threading.Thread(target=sync)
        t.start()
        wait_for(lambda: emulator.total() >= seq + 2, 30, "the pass to start")
        t0 = time.monotonic()
        emulator.proc.send_signal(signal.SIGKILL)
        emulator.proc.wait()
        t.join(60)
        assert not t.is_alive(), "the sync hung with the API gone"
        assert time.monotonic() - t0 < DEADLINE + SLACK
        assert res["r"] in (errno.EIO, errno.EAGAIN), res
        assert m.status()["state"].startswith("offline (API unreachable")
        assert m.status()["last_result"] != "ok"
        # Reads come from the cache, without waiting on the dead API.
        t0 = time.monotonic()
        for c in data["conversations"]:
            assert m.json("conversations", str(c["id"]), "conversation.json") == c
        assert time.monotonic() - t0 < 10 * SLOW
        assert any("Connection refused" in l or "Couldn't connect" in l
                   or "connect" in l.lower() for l in errors(m)), errors(m)
        assert_alive(m)
        # Back on the same port (the same seed: the same data).
        emu2 = Emulator("--port", str(port), workdir=str(tmp_path / "emu2"))
        assert emu2.port == port
        m.ctl("sync")
        assert m.status()["state"] == "online"
        assert m.status()["last_result"] == "ok"
        assert_matches_api(m, emu2)
    finally:
        m.unmount()
        if emu2:
            emu2.stop()
    assert not m.suspicious(), m.suspicious()
    assert integrity(cache_file(m)) == [("ok",)]
