# SPDX-License-Identifier: MIT
"""One cache, one Drift org (issue 10): a token of another org on the same
cache_dir gets a cache of its own, never the first org's data, and a cache
that cannot be told apart is refused rather than served."""
import glob
import os
import shutil
import sqlite3

import pytest

from helpers import TOKEN

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
