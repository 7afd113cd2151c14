# SPDX-License-Identifier: MIT
"""One cache, one Drift org (issue 10): a token of another org on the same
cache_dir gets a cache of its own, never the first org's data, and a cache
that cannot be told apart is refused rather than served."""
import glob
import os
import shutil
import sqlite3
import time

import pytest

from helpers import TOKEN, wait_for

OTHER_TOKEN = "org-b-install-token"
OTHER_ORG = 4242
MAIN_ORG = 1351205
TWO_ORGS = pytest.mark.emulator_args("--org", "%s=%d" % (OTHER_TOKEN, OTHER_ORG))


def ids(m, d):
    """The numeric entries of a directory of the mount."""
    return {n.split(".")[0] for n in os.listdir(m.p(d)) if n.split(".")[0].isdigit()}


def api_ids(emulator, org, kind):
    data = emulator.admin("GET", "data?org=%d" % org)
    return {str(o["id"]) for o in data[kind]}


def host_dir(cache, emulator):
    return os.path.join(cache, "127.0.0.1_%d" % emulator.port)


@TWO_ORGS
def test_a_second_org_on_one_cache_dir_sees_only_its_own_data(emulator, mounts,
                                                               tmp_path):
    cache = str(tmp_path / "cache")
    a = mounts(emulator.url, str(tmp_path / "a"), cache_dir=cache)
    assert ids(a, "conversations") == api_ids(emulator, MAIN_ORG, "conversations")
    a.unmount()

    b = mounts(emulator.url, str(tmp_path / "b"), cache_dir=cache,
               env={"DRIFT_TOKEN": OTHER_TOKEN})
    assert ids(b, "conversations") == api_ids(emulator, OTHER_ORG, "conversations")
    assert ids(b, "users") == api_ids(emulator, OTHER_ORG, "users")
    assert ids(b, "contacts") <= api_ids(emulator, OTHER_ORG, "contacts")
    b.unmount()

    # Each org has its own directory, and org A's cache is still whole: a
    # mount of A lists it before any request of its own sync.
    host = host_dir(cache, emulator)
    assert os.path.exists(os.path.join(host, str(MAIN_ORG), "cache.db"))
    assert os.path.exists(os.path.join(host, str(OTHER_ORG), "cache.db"))
    a.opts.append("refresh=0")
    a.start(wait_sync=False)
    assert ids(a, "conversations") == api_ids(emulator, MAIN_ORG, "conversations")


@TWO_ORGS
def test_offline_with_an_unknown_org_refuses_to_pick_a_cache(emulator, mounts,
                                                            tmp_path):
    """DRIFT_TOKEN says nothing about its org offline: with two orgs'
    caches there, the mount names both and says what to do."""
    cache = str(tmp_path / "cache")
    for name, token in (("a", TOKEN), ("b", OTHER_TOKEN)):
        m = mounts(emulator.url, str(tmp_path / name), cache_dir=cache,
                   env={"DRIFT_TOKEN": token})
        m.unmount()
    with pytest.raises(RuntimeError) as e:
        mounts(emulator.url, str(tmp_path / "c"), cache_dir=cache,
               opts=["offline"], env={"DRIFT_TOKEN": OTHER_TOKEN},
               wait_sync=False)
    text = str(e.value)
    assert str(MAIN_ORG) in text and str(OTHER_ORG) in text, text
    assert "driftctl login" in text, text


def make_legacy(cache, emulator, org):
    """Turns org's cache into one as driftfs kept it before caches were
    per org: its files right in the host directory, no org recorded."""
    host = host_dir(cache, emulator)
    src = os.path.join(host, str(org))
    for f in os.listdir(src):
        if f not in ("mount", "sync.lock"):
            shutil.move(os.path.join(src, f), os.path.join(host, f))
    shutil.rmtree(src)
    db = sqlite3.connect(os.path.join(host, "cache.db"))
    db.execute("DELETE FROM meta WHERE key = 'org_id'")
    db.commit()
    db.close()
    return host


@TWO_ORGS
def test_a_cache_from_before_is_adopted_by_its_own_org(emulator, mounts, tmp_path):
    cache = str(tmp_path / "cache")
    a = mounts(emulator.url, str(tmp_path / "a"), cache_dir=cache)
    a.unmount()
    host = make_legacy(cache, emulator, MAIN_ORG)

    # Org B's token: the old cache holds org A's users, so it is not B's.
    b = mounts(emulator.url, str(tmp_path / "b"), cache_dir=cache,
               env={"DRIFT_TOKEN": OTHER_TOKEN})
    assert ids(b, "conversations") == api_ids(emulator, OTHER_ORG, "conversations")
    b.unmount()
    assert not os.path.exists(os.path.join(host, "cache.db"))
    # It went to org A's place, data and all, for A's next mount.
    a.opts.append("refresh=0")
    a.start(wait_sync=False)
    assert ids(a, "conversations") == api_ids(emulator, MAIN_ORG, "conversations")
    assert glob.glob(os.path.join(host, str(MAIN_ORG), "cache.db"))


@TWO_ORGS
def test_a_cache_holding_two_orgs_is_refused(emulator, mounts, tmp_path):
    """What an older driftfs left after a login to another org: both orgs'
    data in one file. It cannot be split, so it is not served."""
    cache = str(tmp_path / "cache")
    a = mounts(emulator.url, str(tmp_path / "a"), cache_dir=cache)
    a.unmount()
    host = make_legacy(cache, emulator, MAIN_ORG)
    db = sqlite3.connect(os.path.join(host, "cache.db"))
    row = db.execute("SELECT * FROM users LIMIT 1").fetchone()
    cols = [c[1] for c in db.execute("PRAGMA table_info(users)")]
    user = dict(zip(cols, row))
    user["id"] = 99
    user["json"] = ('{"id": 99, "orgId": %d, "name": "B"}' % OTHER_ORG).encode()
    db.execute("INSERT INTO users(%s) VALUES(%s)" % (
        ",".join(cols), ",".join("?" * len(cols))), [user[c] for c in cols])
    db.commit()
    db.close()
    with pytest.raises(RuntimeError) as e:
        mounts(emulator.url, str(tmp_path / "b"), cache_dir=cache,
               env={"DRIFT_TOKEN": OTHER_TOKEN}, wait_sync=False)
    text = str(e.value)
    assert str(MAIN_ORG) in text and str(OTHER_ORG) in text, text
    assert host in text, text
    # Nothing was served from it, nothing moved.
    assert os.path.exists(os.path.join(host, "cache.db"))


# The schema driftfs 0.1 wrote before per-org caches (git show
# 88bde55:src/store.c): version "3", users' json carrying their orgId, and
# the outbox in a file of its own.
SCHEMA3 = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB);
CREATE TABLE contacts(id INTEGER PRIMARY KEY, created_at INTEGER NOT NULL,
 email TEXT, email_name TEXT, external_id TEXT, ext_name TEXT, name TEXT,
 json BLOB NOT NULL, tags BLOB NOT NULL);
CREATE TABLE users(id INTEGER PRIMARY KEY, mtime INTEGER NOT NULL,
 email TEXT, email_name TEXT, name TEXT, bot INTEGER NOT NULL,
 json BLOB NOT NULL, gen INTEGER NOT NULL);
CREATE TABLE conversations(id INTEGER PRIMARY KEY,
 contact_id INTEGER NOT NULL, status TEXT NOT NULL,
 created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
 json BLOB NOT NULL, transcript BLOB NOT NULL);
CREATE TABLE messages(id INTEGER PRIMARY KEY,
 conversation_id INTEGER NOT NULL, created_at INTEGER NOT NULL,
 json BLOB NOT NULL);
CREATE TABLE attachments(id INTEGER PRIMARY KEY,
 conversation_id INTEGER NOT NULL, message_id INTEGER NOT NULL,
 name TEXT NOT NULL, file_name TEXT, mime TEXT, mtime INTEGER NOT NULL,
 data BLOB NOT NULL);
CREATE TABLE playbooks(id INTEGER PRIMARY KEY, mtime INTEGER NOT NULL,
 json BLOB NOT NULL, gen INTEGER NOT NULL);
CREATE TABLE accounts(key TEXT PRIMARY KEY, ino_id INTEGER NOT NULL,
 name TEXT NOT NULL, mtime INTEGER NOT NULL, json BLOB NOT NULL,
 gen INTEGER NOT NULL);
INSERT INTO meta VALUES('schema', '3');
"""
OUTBOX3 = """
CREATE TABLE outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT,
 created INTEGER NOT NULL, path TEXT NOT NULL, kind TEXT NOT NULL,
 method TEXT NOT NULL, api_path TEXT NOT NULL, body BLOB,
 target INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL,
 attempts INTEGER NOT NULL DEFAULT 0, next_try INTEGER NOT NULL DEFAULT 0,
 last_error TEXT);
"""


def make_schema3(where, user_orgs=(), contact=None):
    """A cache as driftfs 0.1 left it in where: users of user_orgs and, with
    contact, one PATCH of it waiting in the outbox. Returns its API path."""
    os.makedirs(where, exist_ok=True)
    db = sqlite3.connect(os.path.join(where, "cache.db"))
    db.executescript(SCHEMA3)
    for i, org in enumerate(user_orgs):
        db.execute("INSERT INTO users VALUES(?, 0, NULL, NULL, 'old', 0, ?, 0)",
                   (i + 1, ('{"id": %d, "orgId": %d}' % (i + 1, org)).encode()))
    db.commit()
    db.close()
    db = sqlite3.connect(os.path.join(where, "outbox.db"))
    db.executescript(OUTBOX3)
    path = None
    if contact is not None:
        path = "/contacts/%s" % contact
        db.execute("INSERT INTO outbox(created, path, kind, method, api_path,"
                   " body, target, state) VALUES(1, 'contacts/x', "
                   "'contact_patch', 'PATCH', ?, ?, ?, 'pending')",
                   (path, b'{"attributes": {"name": "from org A"}}', int(contact)))
    db.commit()
    db.close()
    return path


def outbox_rows(path):
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return db.execute("SELECT api_path FROM outbox").fetchall()
    finally:
        db.close()


def sent_to(emulator, path):
    """The writes (not reads) that reached path."""
    return [r for r in emulator.requests()
            if r["path"] == path and r["method"] != "GET"]


@TWO_ORGS
def test_a_schema3_cache_goes_to_the_org_of_its_users(emulator, mounts, tmp_path):
    """A real old cache (schema 3) opened first with another org's token:
    its users say org A, so it moves to A's directory, and A's write waiting
    in its outbox is not sent with org B's token."""
    cache = str(tmp_path / "cache")
    host = host_dir(cache, emulator)
    contact = sorted(api_ids(emulator, MAIN_ORG, "contacts"))[0]
    path = make_schema3(host, [MAIN_ORG], contact)

    b = mounts(emulator.url, str(tmp_path / "b"), cache_dir=cache,
               env={"DRIFT_TOKEN": OTHER_TOKEN})
    assert ids(b, "conversations") == api_ids(emulator, OTHER_ORG, "conversations")
    b.unmount()
    assert not sent_to(emulator, path)
    a_dir = os.path.join(host, str(MAIN_ORG))
    assert os.path.exists(os.path.join(a_dir, "cache.db"))
    assert outbox_rows(os.path.join(a_dir, "outbox.db")) == [(path,)]
    assert not os.path.exists(os.path.join(host, "cache.db"))


@TWO_ORGS
def test_unsent_writes_of_an_unknown_org_are_not_adopted(emulator, mounts,
                                                         tmp_path):
    """An old cache with no users to say whose it is, but a write waiting:
    it is refused rather than taken for the token's org."""
    cache = str(tmp_path / "cache")
    host = host_dir(cache, emulator)
    contact = sorted(api_ids(emulator, MAIN_ORG, "contacts"))[0]
    path = make_schema3(host, [], contact)
    with pytest.raises(RuntimeError) as e:
        mounts(emulator.url, str(tmp_path / "b"), cache_dir=cache,
               env={"DRIFT_TOKEN": OTHER_TOKEN}, wait_sync=False)
    text = str(e.value)
    assert "not yet sent" in text and str(OTHER_ORG) in text, text
    assert not sent_to(emulator, path)
    assert outbox_rows(os.path.join(host, "outbox.db")) == [(path,)]
    assert not os.path.exists(os.path.join(host, str(OTHER_ORG)))


@TWO_ORGS
def test_an_org_id_of_zero_or_less_never_names_a_directory(emulator, mounts,
                                                         tmp_path):
    cache = str(tmp_path / "cache")
    a = mounts(emulator.url, str(tmp_path / "a"), cache_dir=cache)
    a.unmount()
    host = make_legacy(cache, emulator, MAIN_ORG)
    db = sqlite3.connect(os.path.join(host, "cache.db"))
    db.execute("UPDATE users SET json = CAST(? AS BLOB)",
               ('{"id": 1, "orgId": -5}',))
    db.commit()
    db.close()
    b = mounts(emulator.url, str(tmp_path / "b"), cache_dir=cache,
               env={"DRIFT_TOKEN": OTHER_TOKEN}, wait_sync=False)
    b.unmount()
    names = sorted(os.listdir(host))
    assert "-5" not in names and "0" not in names, names
    assert os.path.exists(os.path.join(host, str(OTHER_ORG), "cache.db"))


def test_a_move_cut_short_is_taken_up_again(emulator, mounts, tmp_path):
    """A crash after outbox.db went to <org>.new, before cache.db: the next
    start moves the rest and makes it <org>, the write still queued in it
    goes out once, and nothing is made in the host directory."""
    cache = str(tmp_path / "cache")
    host = host_dir(cache, emulator)
    contact = sorted(api_ids(emulator, MAIN_ORG, "contacts"))[0]
    path = make_schema3(host, [MAIN_ORG], contact)
    half = os.path.join(host, "%d.new" % MAIN_ORG)
    os.makedirs(half)
    os.rename(os.path.join(host, "outbox.db"), os.path.join(half, "outbox.db"))

    a = mounts(emulator.url, str(tmp_path / "a"), cache_dir=cache)
    wait_for(lambda: sent_to(emulator, path), 20, "the queued write")
    a.unmount()
    assert len(sent_to(emulator, path)) == 1
    names = sorted(os.listdir(host))
    assert names == sorted([".migrate", str(MAIN_ORG)]), names
    a_dir = os.path.join(host, str(MAIN_ORG))
    assert outbox_rows(os.path.join(a_dir, "outbox.db")) == []


def only_org_a(cache, emulator):
    """What org A's cache holds is org A's (the orgs share some ids: B's
    own ones must not be there)."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(
        host_dir(cache, emulator), str(MAIN_ORG), "cache.db"), uri=True)
    try:
        convs = {str(r[0]) for r in db.execute("SELECT id FROM conversations")}
        users = {str(r[0]) for r in db.execute("SELECT id FROM users")}
    finally:
        db.close()
    assert convs <= api_ids(emulator, MAIN_ORG, "conversations"), convs
    assert users <= api_ids(emulator, MAIN_ORG, "users"), users


def queue_a_write(cache, emulator):
    """One PATCH of an org A contact waiting in A's outbox."""
    contact = sorted(api_ids(emulator, MAIN_ORG, "contacts"))[0]
    path = "/contacts/%s" % contact
    db = sqlite3.connect(os.path.join(host_dir(cache, emulator), str(MAIN_ORG),
                                      "outbox.db"))
    db.execute("INSERT INTO outbox(created, path, kind, method, api_path, body,"
               " target, state, object) VALUES(1, 'contacts/x', 'contact_patch',"
               " 'PATCH', ?, ?, ?, 'pending', ?)",
               (path, b'{"attributes": {"name": "from org A"}}', int(contact),
                "contact:%s" % contact))
    db.commit()
    db.close()
    return path


def ctl_quietly(m, command):
    try:
        m.ctl(command)
    except OSError:
        pass    # the command's result; what it did is checked after


@TWO_ORGS
def test_an_unverified_start_lets_no_other_org_in(emulator, mounts, tmp_path):
    """token_info fails at start, DRIFT_TOKEN is org B's, and only org A's
    cache is there: it is served unverified, nothing of B enters it, A's
    queued write does not go out with B's token, and once token_info
    answers the mount stops for good and says which orgs."""
    cache = str(tmp_path / "cache")
    a = mounts(emulator.url, str(tmp_path / "a"), cache_dir=cache)
    a.unmount()
    path = queue_a_write(cache, emulator)
    emulator.reset()
    emulator.add_fault(kind="status", status=503, path="^/app/token_info",
                       count=1000)
    b = mounts(emulator.url, str(tmp_path / "b"), cache_dir=cache,
               env={"DRIFT_TOKEN": OTHER_TOKEN}, opts=["refresh=1"])
    b.wait_synced(passes=2)
    only_org_a(cache, emulator)
    assert {r["path"] for r in emulator.requests()} == {"/app/token_info"}
    assert "not verified" in b.status()["org"]

    emulator.clear_faults()
    ctl_quietly(b, "sync")
    errors = b.read(".driftfs", "errors", mode="r")
    assert str(OTHER_ORG) in errors and str(MAIN_ORG) in errors, errors
    st = b.status()["org"]
    assert str(OTHER_ORG) in st and "stopped" in st, st
    n = int(b.status()["sync_passes"])
    b.wait_synced(passes=n + 2)
    assert {r["path"] for r in emulator.requests()} == {"/app/token_info"}
    assert not sent_to(emulator, path)
    only_org_a(cache, emulator)
    assert str(OTHER_ORG) in b.logtext() and str(MAIN_ORG) in b.logtext()


@TWO_ORGS
def test_offline_switched_online_is_checked_first(emulator, mounts, tmp_path):
    """-o offline picks the only cache with nothing verified; `online`
    through .driftfs/ctl must not then sync org B's data into it."""
    cache = str(tmp_path / "cache")
    a = mounts(emulator.url, str(tmp_path / "a"), cache_dir=cache)
    a.unmount()
    emulator.reset()
    b = mounts(emulator.url, str(tmp_path / "b"), cache_dir=cache,
               opts=["offline"], env={"DRIFT_TOKEN": OTHER_TOKEN},
               wait_sync=False)
    ctl_quietly(b, "online")
    ctl_quietly(b, "sync")
    only_org_a(cache, emulator)
    assert {r["path"] for r in emulator.requests()} == {"/app/token_info"}
    errors = b.read(".driftfs", "errors", mode="r")
    assert str(OTHER_ORG) in errors and str(MAIN_ORG) in errors, errors


def test_a_stalled_token_info_does_not_hold_up_the_start(emulator, mounts,
                                                         tmp_path):
    cache = str(tmp_path / "cache")
    a = mounts(emulator.url, str(tmp_path / "a"), cache_dir=cache)
    want = ids(a, "conversations")
    a.unmount()
    emulator.add_fault(kind="stall", seconds=60, path="^/app/token_info",
                       count=100)
    t = time.monotonic()
    b = mounts(emulator.url, str(tmp_path / "b"), cache_dir=cache,
               opts=["timeout=30"], wait_sync=False)
    took = time.monotonic() - t
    assert took < 12, took
    assert ids(b, "conversations") == want
    assert "not verified" in b.status().get("org", ""), b.status()
