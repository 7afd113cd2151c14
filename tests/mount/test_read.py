# SPDX-License-Identifier: MIT
"""The read side of the tree (DESIGN.md §2-3) on a real mount, against the
emulator's own data."""
import errno
import hashlib
import json
import os
import re
import stat
import subprocess

import pytest


def ms_to_s(ms):
    return ms // 1000


def check_json_file(m, parts, expected, mtime_ms=None):
    """A JSON file: same object as the API's, exact size, canonical bytes."""
    path = m.p(*parts)
    raw = m.read(*parts)
    st = os.stat(path)
    assert st.st_size == len(raw), path
    assert json.loads(raw) == expected, path
    # Canonical: sorted keys, 2-space indent, final newline.
    assert raw == (json.dumps(expected, indent=2, sort_keys=True,
                              ensure_ascii=False) + "\n").encode(), path
    if mtime_ms is not None:
        assert int(st.st_mtime) == ms_to_s(mtime_ms), path
    assert stat.S_IMODE(st.st_mode) in (0o444, 0o644)


def test_top_level(mount):
    assert sorted(os.listdir(mount.path)) == sorted(
        ["contacts", "users", "conversations", "playbooks", "accounts", "search",
         ".driftfs"])
    assert sorted(os.listdir(mount.p(".driftfs"))) == sorted(
        ["status", "stats", "errors", "outbox", "ctl"])


def test_conversations_equal_api(mount, emulator):
    data = emulator.data()
    convs = {c["id"]: c for c in data["conversations"]}
    listed = {int(n) for n in os.listdir(mount.p("conversations")) if n.isdigit()}
    assert listed == set(convs)
    for cid, conv in convs.items():
        check_json_file(mount, ["conversations", str(cid), "conversation.json"],
                        conv, conv["updatedAt"])
        msgs = data["messages"][str(cid)]
        names = sorted(os.listdir(mount.p("conversations", str(cid), "messages")))
        assert names == sorted(["%d.json" % x["id"] for x in msgs] + ["new"])
        for msg in msgs:
            check_json_file(mount, ["conversations", str(cid), "messages",
                                    "%d.json" % msg["id"]], msg, msg["createdAt"])
        link = os.readlink(mount.p("conversations", str(cid), "contact"))
        assert link == "../../contacts/%d" % conv["contactId"]
        assert os.path.isdir(mount.p("conversations", str(cid), "contact"))


def test_ids_beyond_double_precision(mount, emulator):
    data = emulator.data()
    big = [c for c in data["contacts"] if c["id"] > 2**53]
    assert big, "the emulator seeds a contact id above 2^53"
    for c in big:
        raw = mount.read("contacts", str(c["id"]), "contact.json")
        assert ('"id": %d' % c["id"]).encode() in raw


def test_contacts_equal_api(mount, emulator):
    data = emulator.data()
    in_convs = {c["contactId"] for c in data["conversations"]}
    contacts = {c["id"]: c for c in data["contacts"]}
    listed = {int(n) for n in os.listdir(mount.p("contacts")) if n.isdigit()}
    # Every contact of a conversation is listed (there is no list endpoint).
    assert in_convs <= listed
    for cid in listed:
        c = contacts[cid]
        check_json_file(mount, ["contacts", str(cid), "contact.json"], c,
                        c["createdAt"])
        tags = [t["name"] if isinstance(t, dict) else t
                for t in c["attributes"].get("tags") or []]
        text = mount.read("contacts", str(cid), "tags", mode="r")
        assert text.splitlines() == [
            "".join("%%%02X" % ord(ch) if ord(ch) < 32 else ch for ch in t)
            for t in tags]
        convs = sorted(str(v["id"]) for v in data["conversations"]
                       if v["contactId"] == cid)
        assert sorted(os.listdir(mount.p("contacts", str(cid), "conversations"))) == convs
        for v in convs:
            target = os.readlink(mount.p("contacts", str(cid), "conversations", v))
            assert target == "../../../conversations/" + v
            assert os.path.isdir(mount.p("contacts", str(cid), "conversations", v))


def test_uncached_contact_is_fetched_on_lookup(mount, emulator):
    data = emulator.data()
    in_convs = {c["contactId"] for c in data["conversations"]}
    lonely = [c for c in data["contacts"] if c["id"] not in in_convs]
    assert lonely, "the emulator seeds contacts without conversations"
    c = lonely[0]
    assert str(c["id"]) not in os.listdir(mount.p("contacts"))
    before = emulator.total()
    assert mount.json("contacts", str(c["id"]), "contact.json") == c
    assert emulator.total() > before
    assert str(c["id"]) in os.listdir(mount.p("contacts"))
    # A name that is no contact: ENOENT, and asked once only.
    with pytest.raises(FileNotFoundError):
        os.stat(mount.p("contacts", "123"))
    n = emulator.total()
    with pytest.raises(FileNotFoundError):
        os.stat(mount.p("contacts", "123"))
    with pytest.raises(FileNotFoundError):
        os.stat(mount.p("contacts", "not-an-id"))
    assert emulator.total() == n


def encode(s):
    """The name encoding of DESIGN.md §2 for names that fit (names.h)."""
    out = []
    for ch in s:
        b = ch.encode()
        o = ord(ch)
        if ch in "/%" or o < 32 or 127 <= o <= 0x9f or 0x202a <= o <= 0x202e \
                or 0x2066 <= o <= 0x2069 or o in (0x2028, 0x2029):
            out.append("".join("%%%02X" % x for x in b))
        else:
            out.append(ch)
    return "".join(out)


def test_by_email_and_external_id(mount, emulator):
    data = emulator.data()
    listed = {int(n) for n in os.listdir(mount.p("contacts")) if n.isdigit()}
    contacts = [c for c in data["contacts"] if c["id"] in listed]
    by_email = {}
    for c in sorted(contacts, key=lambda c: (c["createdAt"], c["id"])):
        e = c["attributes"].get("email")
        if e:
            by_email.setdefault(e, c["id"])
    names = os.listdir(mount.p("contacts", "by-email"))
    assert len(names) == len(by_email)
    for n in names:
        assert len(n.encode()) <= 255 and "/" not in n
    shared = [e for e in by_email if sum(
        1 for c in contacts if c["attributes"].get("email") == e) > 1]
    assert shared, "the emulator seeds an email shared by two contacts"
    for e, cid in by_email.items():
        if len(encode(e).encode()) > 255:
            continue
        assert os.readlink(mount.p("contacts", "by-email", encode(e))) == "../%d" % cid
    longs = [n for n in names if "%~" in n]
    assert longs, "the 260-byte email shows up as a hashed name"
    for n in longs:
        assert os.path.isdir(mount.p("contacts", "by-email", n))
    for c in contacts:
        x = c["attributes"].get("externalId")
        if x:
            t = os.readlink(mount.p("contacts", "by-external-id", encode(x)))
            assert t.startswith("../")


def test_lookup_by_email_of_uncached_contact(mount, emulator):
    data = emulator.data()
    in_convs = {c["contactId"] for c in data["conversations"]}
    lonely = [c for c in data["contacts"] if c["id"] not in in_convs
              and c["attributes"].get("email")
              and len(encode(c["attributes"]["email"])) < 200]
    c = lonely[-1]
    p = mount.p("contacts", "by-email", encode(c["attributes"]["email"]))
    assert os.path.isdir(p)
    assert os.path.realpath(p) == os.path.realpath(mount.p("contacts", str(c["id"])))


def test_users(mount, emulator):
    data = emulator.data()
    names = sorted(n for n in os.listdir(mount.p("users")) if n.endswith(".json"))
    assert names == sorted("%d.json" % u["id"] for u in data["users"])
    for u in data["users"]:
        check_json_file(mount, ["users", "%d.json" % u["id"]], u,
                        u.get("updatedAt") or u.get("createdAt"))
        if u.get("email"):
            p = mount.p("users", "by-email", encode(u["email"]) + ".json")
            assert os.readlink(p) == "../%d.json" % u["id"]
            assert json.load(open(p)) == u


def test_playbooks_accounts_attributes(mount, emulator):
    data = emulator.data()
    assert sorted(os.listdir(mount.p("playbooks"))) == sorted(
        "%d.json" % p["id"] for p in data["playbooks"])
    for p in data["playbooks"]:
        check_json_file(mount, ["playbooks", "%d.json" % p["id"]], p, p["updatedAt"])
    assert sorted(os.listdir(mount.p("accounts"))) == sorted(
        encode(a["accountId"]) + ".json" for a in data["accounts"])
    for a in data["accounts"]:
        check_json_file(mount, ["accounts", encode(a["accountId"]) + ".json"], a,
                        a["updateDateTime"])
    assert mount.json("contacts", "attributes.json") == {"properties": data["attributes"]}


def test_attachments(mount, emulator):
    data = emulator.data()
    assert data["attachments"]
    for aid, a in data["attachments"].items():
        d = mount.p("conversations", str(a["conversationId"]), "attachments")
        name = "%s-%s" % (aid, encode(a["fileName"]))
        assert name in os.listdir(d)
        raw = open(os.path.join(d, name), "rb").read()
        assert len(raw) == a["size"] == os.stat(os.path.join(d, name)).st_size
        assert hashlib.sha256(raw).hexdigest() == a["sha256"]


def test_transcript(mount, emulator):
    data = emulator.data()
    users = {u["id"]: u for u in data["users"]}
    for conv in data["conversations"]:
        msgs = data["messages"][str(conv["id"])]
        raw = mount.read("conversations", str(conv["id"]), "transcript.txt")
        assert os.stat(mount.p("conversations", str(conv["id"]),
                               "transcript.txt")).st_size == len(raw)
        text = raw.decode()
        assert "\x1b" not in text and "<p>" not in text
        headers = [l for l in text.splitlines() if l.startswith("[") and l.endswith("):")]
        assert len(headers) == len(msgs)
        for h, msg in zip(headers, msgs):
            role = "contact" if msg["author"]["type"] == "contact" else (
                "bot" if msg["author"].get("bot") else "agent")
            assert h.endswith("(%s, %s):" % (role, msg["type"])), h
            if role != "contact":
                assert users[msg["author"]["id"]]["name"] in h


def test_status_and_stats(mount, emulator):
    data = emulator.data()
    st = mount.json("conversations", "stats.json")
    for s in ("open", "closed", "pending", "bulk_sent"):
        ids = sorted(str(c["id"]) for c in data["conversations"] if c["status"] == s)
        assert st[s] == len(ids)
        assert sorted(os.listdir(mount.p("conversations", "by-status", s))) == ids
        for i in ids:
            assert os.readlink(mount.p("conversations", "by-status", s, i)) == "../../" + i
    assert st["total"] == len(data["conversations"])
    status = mount.status()
    assert status["state"] == "online"
    assert status["last_result"] == "ok"
    assert int(status["conversations"]) == len(data["conversations"])


def test_grep_finds_planted_phrase_in_one_conversation(mount):
    r = subprocess.run(["grep", "-rl", "purple elephant quorum", mount.path],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    hits = r.stdout.split()
    convs = {os.path.relpath(h, mount.path).split("/")[1] for h in hits}
    assert len(convs) == 1, hits
    assert all(h.startswith(mount.p("conversations")) for h in hits)


def test_read_only_files_refuse_writes(mount, emulator):
    cid = emulator.data()["conversations"][0]["id"]
    p = mount.p("conversations", str(cid), "conversation.json")
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o444
    with pytest.raises(PermissionError):
        open(p, "w")
    with pytest.raises(OSError) as e:
        os.rmdir(mount.p("conversations", str(cid)))
    assert e.value.errno == errno.EPERM


def test_two_cold_caches_read_the_same(emulator, mounts, tmp_path):
    """Two mounts that each sync the account cold read the same bytes:
    nothing may depend on the order the sync's workers finish in. (A
    transcript named a contact by its id when another worker had claimed
    the contact and not yet stored it.)"""
    from helpers import tree
    ms = [mounts(emulator.url, str(tmp_path / n), opts=["conns=8"]) for n in "ab"]
    a, b = tree(ms[0].path), tree(ms[1].path)
    assert sorted(a) == sorted(b)
    assert [rel for rel in a if a[rel] != b[rel]] == []
    # No transcript names a cached contact by its id.
    cached = set(os.listdir(ms[0].p("contacts")))
    for rel, body in a.items():
        if rel.endswith("transcript.txt"):
            for cid in re.findall(rb"\] Contact (\d+) \(contact", body):
                assert cid.decode() not in cached, rel


def test_rsync_second_pass_copies_nothing(mount, emulator, tmp_path):
    dst = str(tmp_path / "copy") + "/"
    r = subprocess.run(["rsync", "-a", mount.path + "/", dst],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    before = emulator.total()
    r = subprocess.run(["rsync", "-a", "--itemize-changes", mount.path + "/", dst],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    transferred = [l for l in r.stdout.splitlines() if l[:1] in (">", "<", "c")]
    assert transferred == []
    assert emulator.total() == before


def walk_inodes(root):
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = os.lstat(p).st_ino
    return out


def test_inodes_stable_across_remount(mount):
    first = walk_inodes(mount.path)
    assert len(first) > 100
    assert len(set(first.values())) == len(first), "inode numbers are unique"
    mount.unmount()
    mount.start()
    assert walk_inodes(mount.path) == first


def test_server_change_shows_after_sync(mount, emulator):
    data = emulator.data()
    conv = data["conversations"][-1]
    cid = str(conv["id"])
    old = mount.read("conversations", cid, "transcript.txt")
    old_names = set(os.listdir(mount.p("conversations", cid, "messages")))
    msg = emulator.mutate(op="add_message", conversationId=conv["id"],
                          body="<p>zebra crossing 42</p>", authorType="contact",
                          authorId=conv["contactId"])
    emulator.mutate(op="set_status", conversationId=conv["id"], status="pending")
    contact = data["conversations"][0]["contactId"]
    emulator.mutate(op="update_contact", id=contact, attributes={"city": "Lisbon"})
    # Cached until a sync: the kernel and the cache still show the old bytes.
    assert mount.read("conversations", cid, "transcript.txt") == old
    mount.ctl("sync")
    new = mount.read("conversations", cid, "transcript.txt").decode()
    assert "zebra crossing 42" in new
    names = set(os.listdir(mount.p("conversations", cid, "messages")))
    assert names - old_names == {"%d.json" % msg["id"]}
    assert mount.json("conversations", cid, "conversation.json")["status"] == "pending"
    assert cid in os.listdir(mount.p("conversations", "by-status", "pending"))
    assert cid not in os.listdir(mount.p("conversations", "by-status", conv["status"])) \
        or conv["status"] == "pending"
    assert mount.json("contacts", str(contact), "contact.json")["attributes"]["city"] == "Lisbon"


def test_empty_listing_cached_by_the_kernel_fills_after_sync(mount, emulator):
    """An empty directory listing has nothing for an invalidation to drop:
    the directory's mtime must move so the kernel asks again."""
    data = emulator.data()
    conv = next(c for c in data["conversations"]
                if not any(a["conversationId"] == c["id"] for a in data["attachments"].values()))
    att = mount.p("conversations", str(conv["id"]), "attachments")
    assert os.listdir(att) == []
    assert os.listdir(att) == []             # served from the kernel's cache
    before = os.stat(att).st_mtime_ns
    emulator.mutate(op="add_message", conversationId=conv["id"], body="<p>see file</p>",
                    authorType="contact", authorId=conv["contactId"],
                    attachments=[{"fileName": "late.txt", "mimeType": "text/plain",
                                  "text": "arrived later"}])
    mount.ctl("sync")
    names = os.listdir(att)
    assert len(names) == 1 and names[0].endswith("late.txt"), names
    assert os.stat(att).st_mtime_ns != before


def test_cached_reads_survive_the_api_going_away(mount, emulator):
    data = emulator.data()
    conv = data["conversations"][0]
    expected = mount.read("conversations", str(conv["id"]), "transcript.txt")
    emulator.stop()
    mount.unmount()
    mount.start(wait_sync=False)
    assert mount.read("conversations", str(conv["id"]), "transcript.txt") == expected
    assert mount.json("conversations", str(conv["id"]), "conversation.json") == conv
    with pytest.raises(OSError):
        mount.ctl("sync")
    assert mount.status()["state"].startswith("offline")
    assert mount.read(".driftfs", "errors")


@pytest.mark.emulator_args("--paging", "token", "--conversations", "250", "--messages", "2")
def test_page_token_paging(mount, emulator):
    data = emulator.data()
    listed = {int(n) for n in os.listdir(mount.p("conversations")) if n.isdigit()}
    assert listed == {c["id"] for c in data["conversations"]}
    paths = [r["path"] + ("?" + r["query"] if r.get("query") else "")
             for r in emulator.requests() if r["path"].endswith("/conversations/list")]
    assert any("page_token=" in p for p in paths)


def test_new_conversation_appears_everywhere_after_sync(mount, emulator):
    data = emulator.data()
    contact = data["conversations"][0]["contactId"]
    # Read the listings first, so the kernel has them cached.
    before_convs = set(os.listdir(mount.p("conversations")))
    before_contact = set(os.listdir(mount.p("contacts", str(contact), "conversations")))
    before_open = set(os.listdir(mount.p("conversations", "by-status", "open")))
    stats = mount.json("conversations", "stats.json")
    conv = emulator.mutate(op="new_conversation", contactId=contact,
                           body="<p>hello again</p>", status="open")
    mount.ctl("sync")
    cid = str(conv["id"])
    assert set(os.listdir(mount.p("conversations"))) == before_convs | {cid}
    assert set(os.listdir(mount.p("contacts", str(contact), "conversations"))) == \
        before_contact | {cid}
    assert set(os.listdir(mount.p("conversations", "by-status", "open"))) == before_open | {cid}
    assert mount.json("conversations", "stats.json")["open"] == stats["open"] + 1
    assert "hello again" in mount.read("conversations", cid, "transcript.txt", mode="r")


def test_listing_passes_are_whole_and_independent(mount, emulator):
    """Readdir offsets index one pass: an abandoned pass, a rewind and
    concurrent passes all see every entry once."""
    import threading
    ids = {str(c["id"]) for c in emulator.data()["conversations"]}
    path = mount.p("conversations")
    want = sorted(os.listdir(path))
    assert ids <= set(want) and len(set(want)) == len(want)
    # Abandoned half way, in several directories, more than are kept.
    for d in ["conversations", "contacts", "users", "playbooks"] * 3:
        with os.scandir(mount.p(d)) as it:
            next(it, None)
    # A fresh kernel cache, then whole passes racing each other.
    subprocess.run(["sh", "-c", "echo 2 > /proc/sys/vm/drop_caches"], check=False)
    got, errors = [], []

    def one():
        try:
            got.append(sorted(os.listdir(path)))
        except OSError as e:
            errors.append(e)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all(g == want for g in got), [len(g) for g in got]
    # rewinddir(): Python's scandir restarts with a new pass each time.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        first = sorted(os.listdir(fd))
        second = sorted(os.listdir(fd))
    finally:
        os.close(fd)
    assert first == second == want



def test_a_read_right_after_ctl_sync_sees_the_whole_new_file(mount, emulator):
    """`echo sync > ctl` returns once the kernel has been told what the
    sync changed (the notifier's invalidations used to come after): a read
    right after it got the old size's bytes of a transcript that grew, cut
    short, now and then. Every conversation changes at once, so that the
    notifier has a large batch to work through, and a few rounds."""
    convs = emulator.data()["conversations"]
    for i in range(4):
        old = {c["id"]: mount.read("conversations", str(c["id"]),
                                   "transcript.txt") for c in convs}
        for c in convs:
            emulator.mutate(op="add_message", conversationId=c["id"],
                            body="<p>round %d of the notifier race</p>" % i,
                            authorType="contact", authorId=c["contactId"])
        mount.ctl("sync")
        for c in reversed(convs):
            new = mount.read("conversations", str(c["id"]), "transcript.txt")
            assert new.startswith(old[c["id"]]), (i, c["id"])
            assert new.decode().rstrip().endswith(
                "round %d of the notifier race" % i), (i, c["id"], new[-120:])


def test_a_contact_read_right_after_ctl_sync_path_is_whole(mount, emulator):
    """The same for `sync contacts/<id>`, the case first seen: contact.json
    read right after it was cut at its old size (invalid JSON)."""
    cid = emulator.data()["conversations"][0]["contactId"]
    parts = ("contacts", str(cid), "contact.json")
    for i in range(12):
        json.loads(mount.read(*parts))
        emulator.mutate(op="update_contact", id=cid,
                        attributes={"note_%d" % i: "grown by round %d" % i})
        mount.ctl("sync contacts/%d" % cid)
        raw = mount.read(*parts)
        assert json.loads(raw)["attributes"]["note_%d" % i] == \
            "grown by round %d" % i, (i, raw[-120:])
