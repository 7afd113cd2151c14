# SPDX-License-Identifier: MIT
"""Deletions in Drift reach the tree, its links and the cache files
(DESIGN.md §3 "Deletions reach the cache", the reconcile option of §1):
a conversation removed server-side goes at once when an API call answers
404 for it, and within one sync once `reconcile` seconds have passed; a
message deleted without touching its conversation goes the same way; a
deleted user, playbook or contact goes with its by-email links; and a
contact erased under GDPR (POST /gdpr/delete through `driftctl api`)
leaves no byte of its email, name or messages in any file under the cache
directory."""
import errno
import json
import os
import sqlite3
import subprocess
import time

import pytest

from helpers import ROOT, TOKEN, Mount, cache_file, wait_for

DRIFTCTL = os.environ.get("DRIFTCTL", os.path.join(ROOT, "build", "default", "driftctl"))
STATUSES = ("open", "closed", "pending", "bulk_sent")


def encode(s):
    """The name encoding of DESIGN.md §2 for short names (names.h)."""
    out = []
    for ch in s:
        o = ord(ch)
        if ch in "/%" or o < 32 or 127 <= o <= 0x9f:
            out.append("".join("%%%02X" % x for x in ch.encode()))
        else:
            out.append(ch)
    return "".join(out)


def wait_reconcile(seconds):
    """The bound is a time: the reconcile checks everything once this much
    has passed since the last pass (no condition to poll for: the daemon
    is idle meanwhile, which is the point)."""
    time.sleep(seconds + 0.2)


def conv_paths(m, conv):
    """Every name under which the tree shows conversation conv."""
    cid = str(conv["id"])
    return [m.p("conversations", cid),
            m.p("conversations", "by-status", conv["status"], cid),
            m.p("contacts", str(conv["contactId"]), "conversations", cid)]


def db_rows(m, sql, *args):
    db = sqlite3.connect("file:%s?mode=ro" % cache_file(m), uri=True)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def assert_conv_gone(m, emulator, conv):
    cid = str(conv["id"])
    for p in conv_paths(m, conv):
        assert not os.path.lexists(p), p
    assert cid not in os.listdir(m.p("conversations"))
    for s in STATUSES:
        assert cid not in os.listdir(m.p("conversations", "by-status", s))
    contact_dir = m.p("contacts", str(conv["contactId"]))
    if os.path.isdir(contact_dir):
        assert cid not in os.listdir(os.path.join(contact_dir, "conversations"))
    data = emulator.data()
    st = m.json("conversations", "stats.json")
    assert st["total"] == len(data["conversations"])
    for s in STATUSES:
        assert st[s] == sum(1 for c in data["conversations"] if c["status"] == s)
    assert db_rows(m, "SELECT id FROM conversations WHERE id = ?", conv["id"]) == []
    assert db_rows(m, "SELECT id FROM messages WHERE conversation_id = ?",
                   conv["id"]) == []


def a_conversation(emulator):
    """A conversation with a contact that has another one (so the contact
    stays when the first goes)."""
    data = emulator.data()
    by_contact = {}
    for c in data["conversations"]:
        by_contact.setdefault(c["contactId"], []).append(c)
    for convs in by_contact.values():
        if len(convs) > 1:
            return convs[0]
    return data["conversations"][0]


def touch_paths(m, conv):
    """Puts every name of conv in the kernel's caches (so a stale entry
    would show)."""
    for p in conv_paths(m, conv):
        assert os.path.lexists(p), p
        os.lstat(p)
    os.listdir(m.p("conversations", str(conv["id"]), "messages"))
    m.read("conversations", str(conv["id"]), "transcript.txt")


def test_conversation_gone_at_once_on_404(mount, emulator):
    conv = a_conversation(emulator)
    touch_paths(mount, conv)
    emulator.mutate(op="delete_conversation", conversationId=conv["id"])
    # The cache still serves it: nothing asked the API yet.
    assert os.path.isdir(mount.p("conversations", str(conv["id"])))
    with pytest.raises(OSError) as e:
        mount.ctl("sync conversations/%d" % conv["id"])
    assert e.value.errno == errno.ENOENT
    assert_conv_gone(mount, emulator, conv)


def test_conversation_gone_within_reconcile(mounts, emulator, tmp_path):
    m = mounts(emulator.url, str(tmp_path / "m"), opts=["reconcile=1"])
    conv = a_conversation(emulator)
    touch_paths(m, conv)
    emulator.mutate(op="delete_conversation", conversationId=conv["id"])
    wait_reconcile(1)
    m.ctl("sync")
    assert_conv_gone(m, emulator, conv)


def test_message_deleted_without_touch_goes(mounts, emulator, tmp_path):
    m = mounts(emulator.url, str(tmp_path / "m"), opts=["reconcile=1"])
    data = emulator.data()
    conv = next(c for c in data["conversations"]
                if len(data["messages"][str(c["id"])]) > 1)
    msgs = data["messages"][str(conv["id"])]
    victim = msgs[-1]
    path = m.p("conversations", str(conv["id"]), "messages", "%d.json" % victim["id"])
    assert os.path.exists(path)
    emulator.mutate(op="delete_message", conversationId=conv["id"],
                    messageId=victim["id"], touch=False)
    after = next(c for c in emulator.data()["conversations"] if c["id"] == conv["id"])
    assert after["updatedAt"] == conv["updatedAt"]
    # An ordinary sync does not see it: updatedAt did not move.
    wait_reconcile(1)
    m.ctl("sync")
    assert not os.path.lexists(path)
    names = os.listdir(m.p("conversations", str(conv["id"]), "messages"))
    assert sorted(names) == sorted(["%d.json" % x["id"] for x in msgs[:-1]] + ["new"])
    assert db_rows(m, "SELECT id FROM messages WHERE id = ?", victim["id"]) == []


def test_user_and_playbook_go(mount, emulator):
    data = emulator.data()
    user = next(u for u in data["users"] if u.get("email"))
    pb = data["playbooks"][0]
    upath = mount.p("users", "%d.json" % user["id"])
    link = mount.p("users", "by-email", encode(user["email"]) + ".json")
    pbpath = mount.p("playbooks", "%d.json" % pb["id"])
    for p in (upath, link, pbpath):
        assert os.path.lexists(p), p
    emulator.mutate(op="delete_user", id=user["id"])
    emulator.mutate(op="delete_playbook", id=pb["id"])
    mount.ctl("sync")
    for p in (upath, link, pbpath):
        assert not os.path.lexists(p), p
    assert "%d.json" % user["id"] not in os.listdir(mount.p("users"))
    assert encode(user["email"]) + ".json" not in os.listdir(mount.p("users", "by-email"))
    assert "%d.json" % pb["id"] not in os.listdir(mount.p("playbooks"))


def test_contact_deleted_goes_with_links(mount, emulator):
    conv = a_conversation(emulator)
    data = emulator.data()
    contact = next(c for c in data["contacts"] if c["id"] == conv["contactId"])
    email = contact["attributes"]["email"]
    others = [c for c in data["contacts"] if c["id"] != contact["id"] and
              c["attributes"].get("email", "").lower() == email.lower()]
    assert not others, "the seed gives every contact its own email"
    cdir = mount.p("contacts", str(contact["id"]))
    link = mount.p("contacts", "by-email", encode(email))
    clink = mount.p("conversations", str(conv["id"]), "contact")
    for p in (cdir, link, clink):
        assert os.path.lexists(p), p
        os.lstat(p)
    emulator.mutate(op="delete_contact", id=contact["id"])
    mount.ctl("sync")
    for p in (cdir, link, clink):
        assert not os.path.lexists(p), p
    assert str(contact["id"]) not in os.listdir(mount.p("contacts"))
    assert encode(email) not in os.listdir(mount.p("contacts", "by-email"))
    # Drift kept the conversation (delete_contact is not an erasure).
    assert os.path.isdir(mount.p("conversations", str(conv["id"])))
    assert "contact" not in os.listdir(mount.p("conversations", str(conv["id"])))
    assert db_rows(mount, "SELECT id FROM contacts WHERE id = ?", contact["id"]) == []


def test_write_answered_404_is_gone_before_close_returns(emulator, tmp_path):
    """The removal a write's 404 brings reaches the kernel's caches before
    close() returns, however slow the notifier that sends the invalidations
    (DRIFTFS_TEST_NOTIFY_DELAY_MS holds each batch 200 ms): a lookup right
    after close() finds no cached entry. Raced once in the test below:
    close() returned while the invalidations were still queued. The same
    after an fsync, which commits but cannot wait (the kernel holds the
    file's lock across it): the close() after it waits instead. The
    drains finished, not timed out, or the pass would be luck."""
    m = Mount(emulator.url, str(tmp_path), env={"DRIFTFS_TEST_NOTIFY_DELAY_MS": "200"})
    try:
        data = emulator.data()
        by_contact = {}
        for c in data["conversations"]:
            by_contact.setdefault(c["contactId"], []).append(c)
        convs = [cs[0] for cs in by_contact.values() if len(cs) > 1][:2]
        assert len(convs) == 2
        for i, conv in enumerate(convs):
            touch_paths(m, conv)
            emulator.mutate(op="delete_conversation", conversationId=conv["id"])
            with pytest.raises(OSError) as e:
                with open(m.p("conversations", str(conv["id"]), "reply"), "w") as f:
                    f.write("are you still there?\n")
                    if i:
                        f.flush()
                        os.fsync(f.fileno())
            assert e.value.errno == errno.ENOENT
            assert_conv_gone(m, emulator, conv)
        assert "notifier drain timeouts" not in m.read(".driftfs", "stats", mode="r")
    finally:
        m.unmount()
        bad = m.suspicious()
    assert not bad, bad


def test_write_answered_404_removes_at_once(mount, emulator):
    """A write whose API call answers 404 fails its close() with ENOENT, and
    what it was about, gone from Drift, leaves the tree at once: a reply to
    a deleted conversation, an edit of a deleted contact."""
    conv = a_conversation(emulator)
    touch_paths(mount, conv)
    emulator.mutate(op="delete_conversation", conversationId=conv["id"])
    with pytest.raises(OSError) as e:
        with open(mount.p("conversations", str(conv["id"]), "reply"), "w") as f:
            f.write("are you still there?\n")
    assert e.value.errno == errno.ENOENT
    assert_conv_gone(mount, emulator, conv)

    data = emulator.data()
    owner = next(c for c in data["contacts"]
                 if c["id"] != conv["contactId"] and
                 os.path.isdir(mount.p("contacts", str(c["id"]))))
    path = mount.p("contacts", str(owner["id"]), "contact.json")
    doc = json.loads(open(path).read())
    doc["attributes"]["name"] = "Renamed Before Gone"
    emulator.mutate(op="delete_contact", id=owner["id"])
    with pytest.raises(OSError) as e:
        with open(path, "w") as f:
            f.write(json.dumps(doc))
    assert e.value.errno == errno.ENOENT
    assert str(owner["id"]) not in os.listdir(mount.p("contacts"))
    assert not os.path.lexists(mount.p("contacts", str(owner["id"])))
    assert db_rows(mount, "SELECT id FROM contacts WHERE id = ?", owner["id"]) == []


def files_holding(root, needles):
    """Every file under root whose bytes hold one of needles (bytes), as
    {path: [needle, ...]}."""
    found = {}
    for d, _dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(d, name)
            with open(p, "rb") as f:
                data = f.read()
            hits = [n for n in needles if n in data]
            if hits:
                found[p] = hits
    return found


def test_gdpr_erasure_leaves_no_bytes(mount, emulator):
    """THE GDPR test: a contact with conversations, an attachment and a
    write of ours in the outbox, erased with POST /gdpr/delete, then one
    sync: no file under the cache directory holds its email, its name or
    its messages' text; the tree shows none of it."""
    data = emulator.data()
    contact = data["contacts"][0]
    cid = contact["id"]
    email = "erase.me.%d@example.org" % cid
    name = "Ottilie Vanderquist"
    phrase = "zanzibar marmalade protocol"
    emulator.mutate(op="update_contact", id=cid,
                    attributes={"email": email, "name": name})
    conv = emulator.mutate(op="new_conversation", contactId=cid,
                           body="<p>first: %s</p>" % phrase, status="open")
    emulator.mutate(op="add_message", conversationId=conv["id"],
                    body="<p>%s, with a file</p>" % phrase,
                    attachments=[{"fileName": "passport.pdf", "size": 30000}])
    mount.ctl("sync")
    mount.ctl("sync contacts/%d" % cid)
    cpath = mount.p("contacts", str(cid))
    assert json.loads(mount.read("contacts", str(cid), "contact.json"))[
        "attributes"]["email"] == email
    assert phrase in mount.read("conversations", str(conv["id"]), "transcript.txt", mode="r")
    atts = os.listdir(mount.p("conversations", str(conv["id"]), "attachments"))
    assert len(atts) == 1
    # A write of ours about the contact: its body passes through outbox.db.
    tags = mount.p("contacts", str(cid), "tags")
    with open(tags, "a") as f:
        f.write("vanderquist-vip\n")
    needles = [email.encode(), name.encode(), phrase.encode(), b"vanderquist-vip"]
    # The test can fail: before the erasure the cache holds them.
    before = files_holding(mount.cache, needles)
    assert any(email.encode() in h for h in before.values()), before
    assert any(phrase.encode() in h for h in before.values()), before

    p = subprocess.run([DRIFTCTL, "--api-url", mount.api_url, "--cache-dir",
                        mount.cache, "api", "-X", "POST", "/gdpr/delete",
                        "-d", json.dumps({"email": email})],
                       env=dict(mount.env, DRIFT_TOKEN=TOKEN),
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert b"processing" in p.stdout
    assert not any(c["id"] == cid for c in emulator.data()["contacts"])
    mount.ctl("sync")

    assert not os.path.lexists(cpath)
    assert not os.path.lexists(mount.p("conversations", str(conv["id"])))
    assert not os.path.lexists(mount.p("contacts", "by-email", encode(email)))
    for s in STATUSES:
        assert str(conv["id"]) not in os.listdir(mount.p("conversations", "by-status", s))
    left = files_holding(mount.cache, needles)
    assert left == {}, "erased data left in %s" % left
    for top in ("conversations", "contacts"):
        assert files_holding(mount.p(top), needles) == {}, top


def pending_faults(emulator):
    return emulator.admin("GET", "faults")["pending"]


def test_fetch_in_flight_does_not_bring_back_a_removed_conversation(mount,
                                                                    emulator):
    """A fetch of a conversation whose answers came before Drift deleted it
    does not store it again after another thread's 404 removed it (the
    interleaving held open by a stall on the first fetch's message list,
    answered before the deletion)."""
    conv = a_conversation(emulator)
    cid = conv["id"]
    touch_paths(mount, conv)
    emulator.add_fault(kind="stall", seconds=2, process_first=True,
                       method="GET", path="^/conversations/%d/messages$" % cid)
    first, res = mount.ctl_in_background("sync conversations/%d" % cid)
    wait_for(lambda: not pending_faults(emulator), 10, "the stalled fetch")
    emulator.mutate(op="delete_conversation", conversationId=cid)
    # Another thread's 404 (the kernel runs one write of the ctl file at a
    # time: this one is a reply, whose 404 refetches the conversation).
    with pytest.raises(OSError) as e:
        with open(mount.p("conversations", str(cid), "reply"), "w") as f:
            f.write("still there?\n")
    assert e.value.errno == errno.ENOENT
    assert db_rows(mount, "SELECT id FROM conversations WHERE id = ?", cid) == []
    first.join(30)
    assert not first.is_alive()
    # Its store skipped (a removal was noted meanwhile), the fetch is made
    # again, and that one finds the conversation gone.
    assert "err" in res and res["err"].errno == errno.ENOENT, res
    assert_conv_gone(mount, emulator, conv)


def test_fetch_in_flight_does_not_bring_back_a_removed_contact(mount,
                                                               emulator):
    """The same for a contact: a GET answered before Drift deleted it is
    not stored after another thread's 404 removed it."""
    conv = a_conversation(emulator)
    kid = conv["contactId"]
    assert os.path.isdir(mount.p("contacts", str(kid)))
    emulator.add_fault(kind="stall", seconds=2, process_first=True,
                       method="GET", path="^/contacts/%d$" % kid)
    first, res = mount.ctl_in_background("sync contacts/%d" % kid)
    wait_for(lambda: not pending_faults(emulator), 10, "the stalled fetch")
    emulator.mutate(op="delete_contact", id=kid)
    with pytest.raises(OSError) as e:
        with open(mount.p("contacts", str(kid), "tags"), "a") as f:
            f.write("gone-meanwhile\n")
    assert e.value.errno == errno.ENOENT
    assert db_rows(mount, "SELECT id FROM contacts WHERE id = ?", kid) == []
    first.join(30)
    assert not first.is_alive()
    # Its store skipped (a removal was noted meanwhile), the fetch is made
    # again, and that one finds the contact gone.
    assert "err" in res and res["err"].errno == errno.ENOENT, res
    assert db_rows(mount, "SELECT id FROM contacts WHERE id = ?", kid) == []
    assert str(kid) not in os.listdir(mount.p("contacts"))


def test_write_to_erased_contact_defers_its_conversations(mount, emulator):
    """A write to a contact erased in Drift fails its close() with ENOENT
    and removes the contact at once, but makes no request for its
    conversations while it holds the outbox (a contact may have
    hundreds): the next sync removes them."""
    data = emulator.data()
    by_contact = {}
    for c in data["conversations"]:
        by_contact.setdefault(c["contactId"], []).append(c)
    kid, convs = max(by_contact.items(), key=lambda kv: len(kv[1]))
    assert len(convs) > 1
    for c in convs:
        assert os.path.isdir(mount.p("conversations", str(c["id"])))
    emulator.mutate(op="erase_contact", id=kid)
    since = emulator.requests()[-1]["seq"]
    with pytest.raises(OSError) as e:
        with open(mount.p("contacts", str(kid), "tags"), "a") as f:
            f.write("erased-meanwhile\n")
    assert e.value.errno == errno.ENOENT
    made = [r["path"] for r in emulator.requests() if r["seq"] > since]
    assert not [p for p in made if p.startswith("/conversations")], made
    assert str(kid) not in os.listdir(mount.p("contacts"))
    # Unlinked at once, removed by the next sync.
    for c in convs:
        assert "contact" not in os.listdir(mount.p("conversations", str(c["id"])))
    mount.ctl("sync")
    for c in convs:
        assert_conv_gone(mount, emulator, c)


def test_removed_contact_leaves_no_link_after_an_earlier_claim(mount,
                                                               emulator):
    """A conversation fetched (its contact with it) before the contact was
    deleted in Drift, then the contact removed on a 404: the conversation
    keeps no link to it, at once and after the sync that checks it."""
    conv = a_conversation(emulator)
    cid, kid = conv["id"], conv["contactId"]
    mount.ctl("sync conversations/%d" % cid)   # claims the contact
    emulator.mutate(op="delete_contact", id=kid)
    with pytest.raises(OSError) as e:
        with open(mount.p("contacts", str(kid), "tags"), "a") as f:
            f.write("gone-meanwhile\n")
    assert e.value.errno == errno.ENOENT
    assert "contact" not in os.listdir(mount.p("conversations", str(cid)))
    assert db_rows(mount, "SELECT contact_id FROM conversations WHERE id = ?",
                   cid) == [(0,)]
    mount.ctl("sync")
    assert os.path.isdir(mount.p("conversations", str(cid)))
    assert "contact" not in os.listdir(mount.p("conversations", str(cid)))
    assert db_rows(mount, "SELECT contact_id FROM conversations WHERE id = ?",
                   cid) == [(0,)]


def test_older_cache_dangling_link_checked_once(mounts, emulator, tmp_path):
    """A cache of an older version kept the link of a conversation to a
    contact the API answered 404 for (no row, the link shown): the first
    sync of this version asks for that contact once and drops the link;
    a later sync does not ask again."""
    m = mounts(emulator.url, str(tmp_path / "m"))
    conv = a_conversation(emulator)
    cid, kid = conv["id"], conv["contactId"]
    m.unmount()
    emulator.mutate(op="delete_contact", id=kid)
    db = sqlite3.connect(cache_file(m))
    try:
        db.execute("DELETE FROM contacts WHERE id = ?", (kid,))
        db.execute("DELETE FROM meta WHERE key = 'dangling_links_checked'")
        db.commit()
    finally:
        db.close()
    m.start()
    m.ctl("sync")
    asked = [r for r in emulator.requests() if r["path"] == "/contacts/%d" % kid]
    assert asked and asked[-1]["status"] == 404
    assert "contact" not in os.listdir(m.p("conversations", str(cid)))
    assert db_rows(m, "SELECT contact_id FROM conversations WHERE id = ?",
                   cid) == [(0,)]
    since = emulator.requests()[-1]["seq"]
    m.ctl("sync")
    again = [r for r in emulator.requests()
             if r["seq"] > since and r["path"] == "/contacts/%d" % kid]
    assert not again, again
