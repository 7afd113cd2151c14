# SPDX-License-Identifier: MIT
"""Deleting a contact through the mount (DESIGN.md §4, §3): each way of
doing it (rmdir, rm -r, rm -rf, shutil.rmtree) succeeds, sends exactly one
DELETE, and leaves contacts/<id> absent at once, not for a minute; after a
bare unlink of contact.json, contact.json itself is gone at once."""
import errno
import os
import shutil
import subprocess

import pytest


def deletes(emulator, since):
    return [r["path"] for r in emulator.requests()
            if r["seq"] > since and r["method"] == "DELETE"]


def last_seq(emulator):
    reqs = emulator.requests()
    return reqs[-1]["seq"] if reqs else 0


def gone(path):
    """A fresh lookup answers ENOENT (not a placeholder)."""
    with pytest.raises(OSError) as e:
        os.stat(path)
    return e.value.errno == errno.ENOENT


def contact_ids(emulator, n):
    """n contacts that have conversations (their directories have parts)."""
    out = []
    for c in emulator.data()["conversations"]:
        if c.get("contactId") and c["contactId"] not in out:
            out.append(c["contactId"])
    assert len(out) >= n
    return out[:n]


def rm_r(path):
    r = subprocess.run(["rm", "-r", path], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr


def rm_rf(path):
    r = subprocess.run(["rm", "-rf", path], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("how", ["rmdir", "rm -r", "rm -rf", "rmtree"])
def test_delete_contact_directory(mount, emulator, how):
    cid = contact_ids(emulator, 1)[0]
    d = mount.p("contacts", str(cid))
    # Stat its parts first, as a user who looked would have.
    for name in os.listdir(d):
        os.lstat(os.path.join(d, name))
    seq = last_seq(emulator)
    {"rmdir": os.rmdir, "rm -r": rm_r, "rm -rf": rm_rf,
     "rmtree": shutil.rmtree}[how](d)
    assert deletes(emulator, seq) == ["/contacts/%d" % cid]
    assert gone(os.path.join(d, "contact.json"))
    assert gone(d)
    assert not os.path.exists(d)
    assert str(cid) not in os.listdir(mount.p("contacts"))
    assert not any(c["id"] == cid for c in emulator.data()["contacts"])


def test_unlink_contact_json(mount, emulator):
    cid = contact_ids(emulator, 1)[0]
    d = mount.p("contacts", str(cid))
    cj = os.path.join(d, "contact.json")
    os.stat(cj)
    seq = last_seq(emulator)
    os.unlink(cj)
    assert deletes(emulator, seq) == ["/contacts/%d" % cid]
    assert gone(cj)
    assert str(cid) not in os.listdir(mount.p("contacts"))
    # What rm -r would do next still works, and the rmdir ends it.
    os.rmdir(d)
    assert gone(d)
    assert deletes(emulator, seq) == ["/contacts/%d" % cid]
