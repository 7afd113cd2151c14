# SPDX-License-Identifier: MIT
"""Full-text search (DESIGN.md §3.1): search/<query>/ answers from the
cache's FTS5 index what transcript.txt shows. Proves: a phrase planted in
one conversation is found there and nowhere else; words match in any case
and without their accents; a contact is found by email and by name, and a
conversation by its tag; a message added on the server is found after the
sync that shows it in the transcript, and one deleted there is no longer
found; an invalid query fails the lookup with EINVAL and .driftfs/errors
says why; search/ stays empty under find, grep -r and rsync -a; a name
holding %2F searches for '/'; text erased under GDPR leaves the index's
pages too (no cache file holds it); a cache of an older version (no index)
is indexed in the background, with progress in .driftfs/status, and
resumes after a kill -9; and `driftctl search` prints the same hits
(plain and --json) from the cache alone, without a request."""
import errno
import json
import os
import re
import sqlite3
import subprocess

import pytest

from helpers import ROOT, Mount, cache_file, wait_for

DRIFTCTL = os.environ.get("DRIFTCTL", os.path.join(ROOT, "build", "default", "driftctl"))


def hits(mount, query):
    """hits.txt of a query as (path, text) pairs, checking its st_size."""
    p = mount.p("search", query, "hits.txt")
    data = mount.read("search", query, "hits.txt")
    assert os.stat(p).st_size == len(data)
    out = []
    for line in data.decode().splitlines():
        path, text = line.split("\t", 1)
        out.append((path, text))
    return out


def convs(mount, query):
    return sorted(int(x) for x in os.listdir(mount.p("search", query, "conversations")))


def contacts(mount, query):
    return sorted(int(x) for x in os.listdir(mount.p("search", query, "contacts")))


def plant(emulator, body, contact=None):
    """A new conversation whose first message is body."""
    data = emulator.data()
    contact = contact or data["contacts"][0]
    return emulator.mutate(op="new_conversation", contactId=contact["id"],
                           body=body, status="open")


def test_phrase_found_in_its_conversation_only(mount, emulator):
    one = plant(emulator, "<p>The quokka tambourine nebula is on order.</p>")
    other = plant(emulator, "<p>A nebula, then a quokka; no tambourine.</p>")
    mount.ctl("sync")
    assert "quokka tambourine nebula" in mount.read(
        "conversations", str(one["id"]), "transcript.txt", mode="r")
    q = '"quokka tambourine nebula"'
    assert convs(mount, q) == [one["id"]]
    h = hits(mount, q)
    assert len(h) == 1
    path, text = h[0]
    assert re.fullmatch(r"conversations/%d/messages/\d+\.json" % one["id"], path)
    # The link resolves to the conversation, and the hit's message is there.
    link = mount.p("search", q, "conversations", str(one["id"]))
    assert os.readlink(link) == "../../../conversations/%d" % one["id"]
    assert os.path.isfile(os.path.join(mount.p("search", q), "..", "..", path))
    assert re.match(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\] .+: .*quokka tambourine nebula", text)
    # The words alone (ANDed) are in both; a conversation without them in none.
    assert convs(mount, "quokka tambourine nebula") == sorted([one["id"], other["id"]])
    assert convs(mount, "quokka NOT order") == [other["id"]]
    assert convs(mount, "quok*") == sorted([one["id"], other["id"]])
    assert convs(mount, "NEAR(quokka nebula, 1)") == [one["id"]]
    assert hits(mount, "zzyzzyva") == [] and convs(mount, "zzyzzyva") == []


def test_case_and_accents_do_not_matter(mount, emulator):
    conv = plant(emulator, "<p>Une Crème Brûlée au Café &amp; Thé</p>")
    mount.ctl("sync")
    for q in ("café", "cafe", "CAFE", "Café", "creme brulee", "CRÈME", "the"):
        assert conv["id"] in convs(mount, q), q
    assert "Crème Brûlée au Café & Thé" in hits(mount, "brulee")[0][1]


def test_contact_by_email_and_name_and_conversation_by_tag(mount, emulator):
    data = emulator.data()
    contact = data["contacts"][1]
    emulator.mutate(op="update_contact", id=contact["id"],
                    attributes={"email": "zq.searchable@example.org",
                                "name": "Zebulon Quixotic"})
    mount.ctl("sync")
    mount.ctl("sync contacts/%d" % contact["id"])
    for q in ("zq.searchable@example.org", "Zebulon", "quixotic",
              '"zebulon quixotic"'):
        assert contacts(mount, q) == [contact["id"]], q
    link = mount.p("search", "Zebulon", "contacts", str(contact["id"]))
    assert os.readlink(link) == "../../../contacts/%d" % contact["id"]
    assert os.path.isfile(os.path.join(link, "contact.json"))
    # A rename leaves the old name unfound.
    emulator.mutate(op="update_contact", id=contact["id"],
                    attributes={"name": "Yolanda Other"})
    mount.ctl("sync contacts/%d" % contact["id"])
    assert contacts(mount, "Zebulon") == []
    assert contacts(mount, "Yolanda") == [contact["id"]]
    # Conversation tags.
    tagged = [c["id"] for c in emulator.data()["conversations"]
              if any(t.get("name") == "billing" for t in c.get("conversationTags") or [])]
    assert tagged
    assert set(tagged) <= set(convs(mount, "billing"))


def test_message_added_then_deleted(mount, emulator):
    conv = plant(emulator, "<p>hello</p>")
    mount.ctl("sync")
    msg = emulator.mutate(op="add_message", conversationId=conv["id"],
                          body="<p>ask about the <b>wombat</b> ledger</p>")
    # Never the network: not found before the sync that stores it.
    assert convs(mount, "wombat ledger") == []
    mount.ctl("sync")
    assert "wombat ledger" in mount.read("conversations", str(conv["id"]),
                                         "transcript.txt", mode="r")
    assert convs(mount, "wombat ledger") == [conv["id"]]
    assert [p for p, _ in hits(mount, '"wombat ledger"')] == [
        "conversations/%d/messages/%d.json" % (conv["id"], msg["id"])]
    emulator.mutate(op="delete_message", conversationId=conv["id"],
                    messageId=msg["id"])
    mount.ctl("sync")
    assert "wombat" not in mount.read("conversations", str(conv["id"]),
                                      "transcript.txt", mode="r")
    assert convs(mount, "wombat") == []
    assert hits(mount, "wombat") == []
    # The conversation's other message is still found.
    assert convs(mount, "hello") and conv["id"] in convs(mount, "hello")


@pytest.mark.parametrize("query", ['"unterminated', "(refund", "NOT refund",
                                   "refund AND"])
def test_invalid_query_is_einval(mount, query):
    with pytest.raises(OSError) as e:
        os.listdir(mount.p("search", query, "conversations"))
    assert e.value.errno == errno.EINVAL
    errors = mount.read(".driftfs", "errors", mode="r")
    assert "invalid query" in errors and "search" in errors


def test_search_stays_empty_for_find_grep_and_rsync(mount, emulator, tmp_path):
    plant(emulator, "<p>marmoset chandelier</p>")
    mount.ctl("sync")
    assert convs(mount, "marmoset")     # a query was looked up
    assert os.listdir(mount.p("search")) == []
    found = subprocess.run(["find", mount.path], capture_output=True,
                           text=True, timeout=120).stdout.splitlines()
    assert mount.p("search") in found
    assert not [f for f in found if f.startswith(mount.p("search") + "/")]
    g = subprocess.run(["grep", "-r", "-l", "marmoset", mount.path],
                       capture_output=True, text=True, timeout=120)
    assert g.stdout.strip(), g.stderr      # grep found it in the transcript
    assert not [f for f in g.stdout.splitlines() if "/search/" in f]
    dest = tmp_path / "copy"
    r = subprocess.run(["rsync", "-a", mount.path + "/", str(dest)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode in (0, 24), r.stderr   # 24: files vanished
    assert os.listdir(dest / "search") == []
    # Read-only: nothing is created there.
    with pytest.raises(OSError) as e:
        open(mount.p("search", "marmoset", "new.txt"), "w")
    assert e.value.errno == errno.EACCES


def test_percent_2f_means_slash(mount, emulator):
    conv = plant(emulator, "<p>ship it to zone k7/q9 only</p>")
    other = plant(emulator, "<p>q9 first, then k7</p>")
    mount.ctl("sync")
    assert convs(mount, "k7%2Fq9") == [conv["id"]]
    assert convs(mount, "k7 q9") == sorted([conv["id"], other["id"]])


def files_holding(root, needles):
    found = {}
    for d, _dirs, files in os.walk(root):
        for name in files:
            with open(os.path.join(d, name), "rb") as f:
                data = f.read()
            hit = [n for n in needles if n in data]
            if hit:
                found[os.path.join(d, name)] = hit
    return found


def test_erased_text_leaves_the_index(mount, emulator):
    """FTS5 keeps a deleted row's words in its old segments until they are
    merged: after an erasure no cache file holds them."""
    data = emulator.data()
    contact = data["contacts"][2]
    conv = plant(emulator, "<p>xylophonequagmire zeppelinmarzipan</p>", contact)
    mount.ctl("sync")
    assert convs(mount, "xylophonequagmire") == [conv["id"]]
    # Index terms are prefix-compressed: look for their tails.
    needles = [b"phonequagmire", b"pelinmarzipan"]
    before = files_holding(mount.cache, needles)
    assert before, "the index should hold the words before the erasure"
    emulator.mutate(op="erase_contact", id=contact["id"])
    mount.ctl("sync")
    assert not os.path.lexists(mount.p("conversations", str(conv["id"])))
    assert convs(mount, "xylophonequagmire") == []
    assert files_holding(mount.cache, needles) == {}


def old_cache(path):
    """Makes cache.db look as a version without search left it."""
    db = sqlite3.connect(path)
    db.executescript("DROP TABLE search_msg; DROP TABLE search_conv;"
                     "DROP TABLE search_contact;"
                     "DELETE FROM meta WHERE key LIKE 'search%';")
    db.close()


def test_an_older_cache_is_indexed_in_the_background(mount, emulator, tmp_path):
    planted = [plant(emulator, "<p>pelican%d upgrade marker</p>" % i)["id"]
               for i in range(3)]
    mount.ctl("sync")
    assert convs(mount, "upgrade marker") == sorted(planted)
    assert mount.status()["search_index"] == "ready"
    mount.unmount()
    old_cache(cache_file(mount))

    # Small chunks: the build takes a while, and the mount answers meanwhile.
    env = {"DRIFTFS_TEST_SEARCH_CHUNK": "5"}
    m = Mount(emulator.url, str(tmp_path), env=env, wait_sync=False)
    try:
        seen = []

        def building():
            s = m.status().get("search_index", "")
            seen.append(s)
            return s.startswith("building")
        wait_for(building, 60, "the build to show")
        done, total = map(int, re.search(r"(\d+)/(\d+)", seen[-1]).groups())
        assert 0 <= done < total
        # Usable meanwhile: the tree reads, a search answers (what is
        # indexed so far).
        assert os.listdir(m.p("conversations"))
        os.listdir(m.p("search", "upgrade", "conversations"))

        # Killed half way, it resumes where it stopped.
        def progressed():
            s = m.status().get("search_index", "")
            g = re.search(r"building (\d+)/", s)
            return s == "ready" or (g and int(g.group(1)) > 0)
        wait_for(progressed, 60, "some progress")
        m.proc.kill()
        m.proc.wait()
        m.unmount()
        m.start(wait_sync=False)
        wait_for(lambda: m.status().get("search_index") == "ready", 120,
                 "the index to be ready")
        st = m.status()
        assert int(st["search_index_bytes"]) > 0
        assert int(st["search_text_bytes"]) > 0
        assert convs(m, "upgrade marker") == sorted(planted)
        # Each message once: the kill did not index a chunk twice.
        assert len(hits(m, "upgrade marker")) == 3
        assert len(hits(m, "pelican0")) == 1
    finally:
        m.unmount()
        bad = m.suspicious()
    assert not bad, bad


def run_ctl(mount, *args, token=False):
    env = dict(mount.env)
    if not token:
        env.pop("DRIFT_TOKEN", None)
    return subprocess.run([DRIFTCTL, "--api-url", mount.api_url, "--cache-dir",
                           mount.cache, "search"] + list(args),
                          env=env, capture_output=True, text=True, timeout=60)


def test_driftctl_search(mount, emulator):
    conv = plant(emulator, "<p>the gazpacho invoice, again</p>")
    emulator.mutate(op="add_message", conversationId=conv["id"],
                    body="<p>gazpacho refund \x1b]0;owned\x07 please</p>")
    mount.ctl("sync")
    want = mount.read("search", "gazpacho", "hits.txt", mode="r")
    assert want.count("\n") == 2
    before = emulator.total()
    p = run_ctl(mount, "gazpacho")
    assert p.returncode == 0, p.stderr
    assert p.stdout == want
    assert "\x1b" not in p.stdout and "\x07" not in p.stdout
    p = run_ctl(mount, "--json", "gazpacho")
    assert p.returncode == 0, p.stderr
    arr = json.loads(p.stdout)
    assert len(arr) == 2
    for o in arr:
        assert o["conversationId"] == conv["id"]
        assert o["path"] == "conversations/%d/messages/%d.json" % (
            conv["id"], o["messageId"])
        assert "gazpacho" in o["snippet"] and o["author"] and o["time"]
    assert [o["path"] for o in arr] == [line.split("\t")[0] for line in want.splitlines()]
    p = run_ctl(mount, "--limit", "1", "gazpacho")
    assert p.returncode == 0 and p.stdout.count("\n") == 1
    p = run_ctl(mount, '"unterminated')
    assert p.returncode == 1 and "invalid query" in p.stderr
    # The cache alone: not one request.
    assert emulator.total() == before
