# SPDX-License-Identifier: MIT
"""Attachment files (blobs/<id>): a second process beside a mount, files
without rows after a failed download, a download that always fails."""
import hashlib
import os
import sqlite3
import subprocess
import threading

from helpers import ROOT, TOKEN, cache_file, wait_for

DRIFTCTL = os.environ.get("DRIFTCTL", os.path.join(ROOT, "build", "default", "driftctl"))


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 16), b""):
            h.update(b)
    return h.hexdigest()


def blob_dir(m):
    return os.path.join(os.path.dirname(cache_file(m)), "blobs")


def rowless_files(m):
    """Files in blobs/ without an attachment row (temp files included)."""
    db = sqlite3.connect("file:%s?mode=ro" % cache_file(m), uri=True)
    try:
        rows = {str(r[0]) for r in db.execute("SELECT id FROM attachments")}
    finally:
        db.close()
    return sorted(n for n in os.listdir(blob_dir(m)) if n not in rows)


def add_files(emulator, conv, names, body):
    msg = emulator.mutate(op="add_message", conversationId=conv,
                          body="<p>%s</p>" % body,
                          attachments=[{"fileName": n, "size": 50000 + i}
                                       for i, n in enumerate(names)])
    return [a["id"] for a in msg["attachments"]]


def assert_reads_back(emulator, m, conv, aid, name):
    meta = emulator.data()["attachments"][str(aid)]
    path = m.p("conversations", str(conv), "attachments",
               "%d-%s" % (aid, name))
    assert sha256_of(path) == meta["sha256"], path


def test_driftctl_beside_a_mount_leaves_its_files_alone(emulator, mounts,
                                                        tmp_path):
    # The mount downloads an attachment slowly (its temp file is in
    # blobs/) while driftctl status opens the same cache. driftctl is
    # not alone with the cache, so it must not sweep blobs/ (it removed
    # the temp file: the mount's rename failed, the attachment was lost)
    # and must not write cache.db.clean at its close (a kill -9 of the
    # mount would then look like a clean close).
    m = mounts(emulator.url, str(tmp_path / "m"), opts=["timeout=30"])
    conv = emulator.data()["conversations"][0]["id"]
    aid, = add_files(emulator, conv, ["slow.bin"], "a slow file")
    emulator.add_fault(kind="stall", path="^/attachments/%d/" % aid,
                       seconds=3)
    blobs = blob_dir(m)
    clean = cache_file(m) + ".clean"
    assert not os.path.exists(clean)     # the mount took it at its open
    sync = threading.Thread(target=m.ctl, args=("sync",))
    sync.start()
    try:
        wait_for(lambda: any(n.startswith(".tmp-") for n in os.listdir(blobs)),
                 20, "the download's temp file")
        p = subprocess.run([DRIFTCTL, "--api-url", emulator.url,
                            "--cache-dir", m.cache, "--timeout", "5",
                            "status"],
                           env=dict(m.env, DRIFT_TOKEN=TOKEN),
                           capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert any(n.startswith(".tmp-") for n in os.listdir(blobs)), \
            "driftctl removed the mount's download in flight"
        assert not os.path.exists(clean), \
            "driftctl wrote cache.db.clean while the mount runs"
    finally:
        sync.join()
    assert_reads_back(emulator, m, conv, aid, "slow.bin")
    assert rowless_files(m) == []
    m.unmount()
    assert os.path.exists(clean)         # alone at its close: clean


def test_no_file_without_a_row_after_a_failed_download(emulator, mounts,
                                                        tmp_path):
    # The second of two new attachments cannot be downloaded. The first
    # one's file must not stay in blobs/ without a row (it did: renamed
    # into place, then the conversation was not stored), as that is
    # deleted personal data left on disk by a clean run.
    m = mounts(emulator.url, str(tmp_path / "m"))
    conv = emulator.data()["conversations"][1]["id"]
    ids = add_files(emulator, conv, ["one.txt", "two.txt"], "two files")
    emulator.add_fault(kind="status", status=500, count=1000,
                       path="^/attachments/%d/" % ids[1])
    try:
        m.ctl("sync")
    except OSError:
        pass    # whether the pass counts it failed is not the point here
    assert rowless_files(m) == []


def test_an_attachment_that_always_fails_leaves_the_rest(emulator, mounts,
                                                          tmp_path):
    # One attachment of three answers 500 every time. The conversation is
    # still stored (its new message, the transcript, the other two
    # attachments); the failed one is fetched when the conversation is
    # fetched again.
    m = mounts(emulator.url, str(tmp_path / "m"))
    conv = emulator.data()["conversations"][2]["id"]
    names = ["a.txt", "b.txt", "c.txt"]
    ids = add_files(emulator, conv, names, "three files here")
    emulator.add_fault(kind="status", status=500, count=1000,
                       path="^/attachments/%d/" % ids[1])
    m.ctl("sync")
    assert "three files here" in m.read("conversations", str(conv),
                                        "transcript.txt").decode()
    att = m.p("conversations", str(conv), "attachments")
    assert sorted(os.listdir(att)) == sorted(
        "%d-%s" % (i, n) for i, n in zip(ids, names) if i != ids[1])
    for i, n in zip(ids, names):
        if i != ids[1]:
            assert_reads_back(emulator, m, conv, i, n)
    assert "attachment %d" % ids[1] in m.read(".driftfs", "errors").decode()
    assert rowless_files(m) == []
    emulator.clear_faults()
    emulator.mutate(op="add_message", conversationId=conv,
                    body="<p>later</p>")
    m.ctl("sync")
    wait_for(lambda: "%d-b.txt" % ids[1] in os.listdir(att), 20,
             "the failed attachment, fetched again")
    assert_reads_back(emulator, m, conv, ids[1], "b.txt")


def test_another_version_beside_a_mount_does_not_rebuild_its_cache(
        emulator, mounts, tmp_path):
    # A process of another schema version (here: the cache's recorded
    # version changed under the mount, as a driftctl of another release
    # sees it) opened the cache beside a running mount and dropped every
    # table under it. Not alone, it refuses, and the mount's data stays.
    m = mounts(emulator.url, str(tmp_path / "m"))
    conv = str(emulator.data()["conversations"][0]["id"])
    db = sqlite3.connect(cache_file(m))
    try:
        (real,) = db.execute("SELECT value FROM meta WHERE key = 'schema'"
                             ).fetchone()
        db.execute("UPDATE meta SET value = 'another' WHERE key = 'schema'")
        db.commit()
        p = subprocess.run([DRIFTCTL, "--api-url", emulator.url,
                            "--cache-dir", m.cache, "--timeout", "5",
                            "status"],
                           env=dict(m.env, DRIFT_TOKEN=TOKEN),
                           capture_output=True, timeout=60)
        assert p.returncode != 0
        assert b"another version" in p.stderr, p.stderr
        assert db.execute("SELECT count(*) FROM conversations").fetchone()[0] > 0
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (real,))
        db.commit()
    finally:
        db.close()
    assert os.path.exists(m.p("conversations", conv, "transcript.txt"))
