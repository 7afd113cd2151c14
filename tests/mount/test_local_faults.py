# SPDX-License-Identifier: MIT
"""Local faults: a damaged cache.db, a full disk, offline mode. Pending
writes must survive each of them and land exactly once."""
import errno
import json
import os
import sqlite3
import subprocess

import pytest

from helpers import Mount, cache_file, integrity, wait_for




def posts_to(emulator, cid):
    return [r for r in emulator.requests() if r["method"] == "POST" and
            r["path"].endswith("/conversations/%s/messages" % cid)]


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def assert_matches_api(m, emulator):
    data = emulator.data()
    listed = {int(n) for n in os.listdir(m.p("conversations")) if n.isdigit()}
    assert listed == {c["id"] for c in data["conversations"]}
    for c in data["conversations"]:
        assert m.json("conversations", str(c["id"]), "conversation.json") == c


def corrupt(path):
    """Garbage over the header page and pages through the file."""
    size = os.path.getsize(path)
    assert size > 64 << 10
    with open(path, "r+b") as f:
        for off in [0] + list(range(16 << 10, size, size // 8)):
            f.seek(off)
            f.write(os.urandom(4096))


def test_corrupt_cache_is_rebuilt_and_keeps_the_outbox(emulator, tmp_path):
    # The POST met a 503, so it may have landed: its check waits the grace
    # first, 1 s here as in the mount fixture, not the 20 s default (what
    # is tested is that the row survives the rebuild, not the grace).
    m = Mount(emulator.url, str(tmp_path),
              env={"DRIFTFS_TEST_LANDED_GRACE_MS": "1000"})
    try:
        cid = str(emulator.data()["conversations"][3]["id"])
        emulator.add_fault(kind="status", status=503, count=1000, method="POST")
        write(m.p("conversations", cid, "reply"), "sent across a rebuilt cache\n")
        assert len(os.listdir(m.p(".driftfs", "outbox"))) == 1
        m.unmount()
        db = cache_file(m)
        assert os.path.exists(cache_file(m, "outbox.db"))
        corrupt(db)
        assert integrity(db) != [("ok",)]
        emulator.clear_faults()
        emulator.reset()
        m.start()
        log = m.logtext()
        assert "is damaged" in log and "rebuilding it from the API" in log, log
        errors = m.read(".driftfs", "errors", mode="r")
        assert "is damaged" in errors and "rebuilt from the API" in errors
        wait_for(lambda: not os.listdir(m.p(".driftfs", "outbox")), 30,
                 "the outbox to drain")
        posts = posts_to(emulator, cid)
        assert len(posts) == 1, posts
        assert json.loads(posts[0]["body"])["body"] == "sent across a rebuilt cache"
        bodies = [x["body"] for x in emulator.data()["messages"][cid]]
        assert bodies.count("sent across a rebuilt cache") == 1
        m.ctl("sync")
        assert_matches_api(m, emulator)
    finally:
        m.unmount()
    assert not m.suspicious(), m.suspicious()
    assert integrity(cache_file(m)) == [("ok",)]


def test_outbox_of_an_older_cache_db_is_moved_once(emulator, tmp_path):
    """Before outbox.db, pending writes sat in cache.db's outbox table."""
    m = Mount(emulator.url, str(tmp_path))
    cid = str(emulator.data()["conversations"][5]["id"])
    try:
        m.unmount()
        os.unlink(cache_file(m, "outbox.db"))
        db = sqlite3.connect(cache_file(m))
        db.execute(
            "CREATE TABLE outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
            " created INTEGER NOT NULL, path TEXT NOT NULL, kind TEXT NOT NULL,"
            " method TEXT NOT NULL, api_path TEXT NOT NULL, body BLOB,"
            " target INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL,"
            " attempts INTEGER NOT NULL DEFAULT 0,"
            " next_try INTEGER NOT NULL DEFAULT 0, last_error TEXT)")
        db.execute("INSERT INTO outbox(seq, created, path, kind, method, api_path,"
                   " body, target, state) VALUES(7, 1, ?, 'reply', 'POST', ?, ?,"
                   " ?, 'pending')",
                   ("conversations/%s/reply" % cid,
                    "/conversations/%s/messages" % cid,
                    json.dumps({"type": "chat", "body": "from the old outbox"}),
                    int(cid)))
        db.commit()
        db.close()
        emulator.reset()
        m.start()
        assert "moved 1 pending write" in m.logtext()
        wait_for(lambda: not os.listdir(m.p(".driftfs", "outbox")), 30,
                 "the outbox to drain")
        assert len(posts_to(emulator, cid)) == 1
        # Moved, not copied: the next mount finds nothing more to send.
        m.unmount()
        m.start()
        m.ctl("sync")
        assert len(posts_to(emulator, cid)) == 1
        db = sqlite3.connect(cache_file(m))
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'outbox'"
                          ).fetchall() == []
        db.close()
    finally:
        m.unmount()
    assert not m.suspicious(), m.suspicious()


@pytest.fixture
def small_fs(tmp_path):
    """A 3 MiB tmpfs (needs root)."""
    if os.geteuid() != 0:
        pytest.skip("SKIP: mounting a small tmpfs needs root")
    d = tmp_path / "small"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700",
                        "tmpfs", str(d)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip("SKIP: cannot mount a tmpfs here: %s" % r.stderr.strip())
    yield str(d)
    subprocess.run(["umount", "-l", str(d)], capture_output=True)


def fill(path):
    """Fills the filesystem of path; returns the filler file."""
    filler = os.path.join(path, "filler")
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC
    return filler


@pytest.mark.emulator_args("--attachments", "40")
def test_full_disk(emulator, small_fs, tmp_path):
    # Ballast, freed later to make room again.
    ballast = os.path.join(small_fs, "ballast")
    with open(ballast, "wb") as f:
        f.write(b"\0" * (1 << 20))
    m = Mount(emulator.url, str(tmp_path), cache_dir=os.path.join(small_fs, "c"),
              opts=["timeout=3"], wait_sync=False)
    filler = None
    try:
        m.wait_synced(timeout=120)
        # The dataset (about 4 MiB of attachments) does not fit in 2 MiB.
        status = m.status()
        assert status["last_result"] != "ok", status
        errors = m.read(".driftfs", "errors", mode="r")
        assert "cache: database or disk is full" in errors, errors
        assert "(first error: No space left on device)" in errors, errors
        # What did fit is served; the mount answers.
        names = [n for n in os.listdir(m.p("conversations")) if n.isdigit()]
        data = {c["id"]: c for c in emulator.data()["conversations"]}
        for n in names:
            assert m.json("conversations", n, "conversation.json") == data[int(n)]
        # A write that cannot be stored durably fails close() with ENOSPC.
        filler = fill(small_fs)
        cid = str(next(iter(data)))
        emulator.reset()
        with pytest.raises(OSError) as e:
            write(m.p("conversations", cid, "reply"), "no room for this\n")
        assert e.value.errno == errno.ENOSPC
        assert posts_to(emulator, cid) == []
        assert os.listdir(m.p(".driftfs", "outbox")) == []
        # With room again, the same write goes through, once.
        os.unlink(filler)
        filler = None
        os.unlink(ballast)
        write(m.p("conversations", cid, "reply"), "room again\n")
        assert len(posts_to(emulator, cid)) == 1
        assert m.proc.poll() is None
    finally:
        if filler:
            os.unlink(filler)
        m.unmount()
    assert not m.suspicious(), m.suspicious()
    assert integrity(cache_file(m)) == [("ok",)]
    assert integrity(cache_file(m, "outbox.db")) == [("ok",)]


def test_offline_mode_reads_the_cache_and_queues_writes(emulator, tmp_path):
    m = Mount(emulator.url, str(tmp_path))
    data = emulator.data()
    cid = str(data["conversations"][2]["id"])
    try:
        m.unmount()
        m.opts.append("offline")
        emulator.reset()
        m.start(wait_sync=False)
        assert m.status()["state"].startswith("offline (offline mode")
        assert_matches_api(m, emulator)
        for c in data["conversations"][:10]:
            m.read("conversations", str(c["id"]), "transcript.txt")
        write(m.p("conversations", cid, "reply"), "written offline\n")
        assert len(os.listdir(m.p(".driftfs", "outbox"))) == 1
        with pytest.raises(OSError) as e:
            m.ctl("sync")
        assert e.value.errno in (errno.EAGAIN, errno.EIO)
        assert emulator.total() == 0, emulator.requests()
        # Back online: the queued write lands, once.
        m.ctl("online")
        wait_for(lambda: not os.listdir(m.p(".driftfs", "outbox")), 30,
                 "the outbox to drain")
        assert len(posts_to(emulator, cid)) == 1
        # Delivered, then refetched: wait for that before going offline.
        conv = next(c for c in emulator.data()["conversations"]
                    if str(c["id"]) == cid)
        wait_for(lambda: m.json("conversations", cid, "conversation.json") == conv,
                 30, "the delivered write's refetch")
        # The ctl command works the same way at run time.
        m.ctl("offline")
        n = emulator.total()
        assert_matches_api(m, emulator)
        write(m.p("conversations", cid, "note"), "noted offline\n")
        assert emulator.total() == n
        m.ctl("online")
        wait_for(lambda: not os.listdir(m.p(".driftfs", "outbox")), 30,
                 "the outbox to drain")
        notes = [x for x in emulator.data()["messages"][cid]
                 if x["body"] == "noted offline"]
        assert len(notes) == 1
    finally:
        m.unmount()
    assert not m.suspicious(), m.suspicious()


def test_damage_after_a_clean_unmount_is_found(emulator, tmp_path):
    """A clean unmount records how it left cache.db, so the next mount can
    skip the full check; a file written since (one page of garbage in the
    middle, the header intact) no longer matches and is checked."""
    m = Mount(emulator.url, str(tmp_path))
    try:
        m.unmount()
        db = cache_file(m)
        assert os.path.exists(db + ".clean")
        m.start()
        assert not os.path.exists(db + ".clean")     # a crash now forces the check
        m.unmount()
        assert os.path.exists(db + ".clean")
        size = os.path.getsize(db)
        with open(db, "r+b") as f:
            f.seek((size // 2) & ~4095)
            f.write(os.urandom(4096))
        assert integrity(db) != [("ok",)]
        m.start()
        assert "is damaged" in m.logtext()
        m.ctl("sync")
        assert_matches_api(m, emulator)
    finally:
        m.unmount()
    assert not m.suspicious(), m.suspicious()
    assert integrity(cache_file(m)) == [("ok",)]
