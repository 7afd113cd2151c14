# SPDX-License-Identifier: MIT
"""Search answers per message and exactly, although the message index
keeps no positions (detail=none, SEARCH_FORMAT 3). Proves, on a real mount:
a phrase finds the message that holds it and not one with its words apart
or in two messages; NEAR(), ^ and NOT of a phrase are exact; hits.txt of a
phrase has one line with the phrase in its snippet, and `driftctl search`
agrees; hits come best match first (more of the query's words first); a
contact's email or name as a phrase finds that contact, not one with the
same words in another order, and a tag's words likewise; and a cache indexed by format 2 (with positions) has its message
index dropped and built again without them at the next mount, after which
the same queries find the same messages."""
import os
import sqlite3
import subprocess

from helpers import ROOT, Mount, cache_file, wait_for

DRIFTCTL = os.environ.get("DRIFTCTL", os.path.join(ROOT, "build", "default", "driftctl"))


def convs(mount, query):
    return sorted(int(x) for x in os.listdir(mount.p("search", query, "conversations")))


def hit_lines(mount, query):
    return mount.read("search", query, "hits.txt", mode="r").splitlines()


def plant(emulator, body):
    contact = emulator.data()["contacts"][0]
    return emulator.mutate(op="new_conversation", contactId=contact["id"],
                           body=body, status="open")["id"]


def planted(emulator):
    a = plant(emulator, "<p>zorbit quaffle plinth</p>")
    b = plant(emulator, "<p>plinth and then quaffle zorbit</p>")
    d = plant(emulator, "<p>zorbit</p>")
    emulator.mutate(op="add_message", conversationId=d, body="<p>quaffle</p>")
    return a, b, d


def check_queries(m, a, b, d):
    # Words are ANDed within one message: d holds them in two.
    assert convs(m, "zorbit quaffle") == sorted([a, b])
    assert convs(m, '"zorbit quaffle"') == [a]
    assert convs(m, '"quaffle zorbit"') == [b]
    assert convs(m, "zorbit + quaffle + plinth") == [a]
    assert convs(m, "NEAR(zorbit plinth, 1)") == [a]
    assert convs(m, "NEAR(zorbit plinth, 3)") == sorted([a, b])
    assert convs(m, '^zorbit') == sorted([a, d])
    assert convs(m, 'zorbit NOT "zorbit quaffle"') == sorted([b, d])
    assert convs(m, 'zorbit NOT (plinth OR "zorbit quaffle")') == [d]
    assert convs(m, '"quaffle zorbit" OR "zorbit quaffle"') == sorted([a, b])
    # README's grouping example: a group, then AND.
    assert convs(m, "(zorbit OR plinth) AND quaffle") == sorted([a, b])
    lines = hit_lines(m, '"zorbit quaffle"')
    assert len(lines) == 1
    assert lines[0].startswith("conversations/%d/messages/" % a)
    assert "zorbit quaffle plinth" in lines[0]
    # The snippet begins near the first term, not at the text's start.
    assert "quaffle zorbit" in hit_lines(m, '"quaffle zorbit"')[0]


def test_phrase_near_caret_and_not_are_exact(mount, emulator):
    a, b, d = planted(emulator)
    mount.ctl("sync")
    check_queries(mount, a, b, d)
    env = dict(mount.env)
    env.pop("DRIFT_TOKEN", None)
    out = subprocess.run([DRIFTCTL, "--api-url", mount.api_url, "--cache-dir",
                          mount.cache, "search", '"zorbit quaffle"'],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == hit_lines(mount, '"zorbit quaffle"')


def test_a_format_2_index_is_built_again_without_positions(mount, emulator, tmp_path):
    a, b, d = planted(emulator)
    mount.ctl("sync")
    mount.unmount()
    path = cache_file(mount)
    db = sqlite3.connect(path)
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'search_msg'").fetchone()[0]
    assert "detail=none" in sql
    # As format 2 left it: the same rows, with positions.
    db.executescript(
        "DROP TABLE search_msg;"
        "CREATE VIRTUAL TABLE search_msg USING fts5(body, content='',"
        " columnsize=0, tokenize='unicode61 remove_diacritics 2');"
        "UPDATE meta SET value = '2' WHERE key = 'search_format';")
    db.close()
    m = Mount(emulator.url, str(tmp_path), wait_sync=False)
    try:
        wait_for(lambda: m.status().get("search_index") == "ready", 120,
                 "the index to be built again")
        check_queries(m, a, b, d)
    finally:
        m.unmount()
        bad = m.suspicious()
    assert not bad, bad
    db = sqlite3.connect(path)
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'search_msg'").fetchone()[0]
    fmt = db.execute("SELECT value FROM meta WHERE key = 'search_format'").fetchone()[0]
    db.close()
    assert "detail=none" in sql
    assert int(fmt) == 3


def test_hits_best_match_first(mount, emulator):
    """hits.txt ranks by the query's words in each message (bm25 without
    lengths, counted from the text): three ocelots before one, although
    the one is newer."""
    many = plant(emulator, "<p>ocelot, ocelot and one more ocelot</p>")
    one = plant(emulator, "<p>an ocelot</p>")
    mount.ctl("sync")
    for q in ("ocelot", "ocelot OR lynx"):
        lines = hit_lines(mount, q)
        assert len(lines) == 2, lines
        assert lines[0].startswith("conversations/%d/" % many), (q, lines)
        assert lines[1].startswith("conversations/%d/" % one), (q, lines)
    # A rarer word weighs more: the message with the phrase comes first.
    lines = hit_lines(mount, '"an ocelot" OR ocelot')
    assert lines[0].startswith("conversations/%d/" % one), lines


def test_contact_phrases_are_exact(mount, emulator):
    """The contacts' index keeps no positions either: an email is the
    phrase of its words, and a contact holding the same words in another
    order or field is not found by it."""
    data = emulator.data()
    one, two = data["contacts"][1], data["contacts"][2]
    emulator.mutate(op="update_contact", id=one["id"],
                    attributes={"email": "zed.quokka@example.org",
                                "name": "Wilhelmina Tarragon"})
    emulator.mutate(op="update_contact", id=two["id"],
                    attributes={"email": "quokka.zed@example.org",
                                "name": "Tarragon Wilhelmina"})
    mount.ctl("sync")
    for c in (one, two):
        mount.ctl("sync contacts/%d" % c["id"])

    def found(q):
        return sorted(int(x) for x in os.listdir(mount.p("search", q, "contacts")))
    assert found("zed.quokka@example.org") == [one["id"]]
    assert found("quokka.zed@example.org") == [two["id"]]
    assert found("zed quokka") == sorted([one["id"], two["id"]])
    assert found('"wilhelmina tarragon"') == [one["id"]]
    assert found('tarragon NOT "wilhelmina tarragon"') == [two["id"]]


def test_tag_phrases_are_exact(mount, emulator):
    """Tags are indexed without positions too: a tag of several words
    (escalations/tier-2) is found as the phrase of its words, and not by
    the same words in another order."""
    tagged = {c["id"] for c in emulator.data()["conversations"]
              if any(t.get("name") == "escalations/tier-2"
                     for t in c.get("conversationTags") or [])}
    assert tagged
    assert tagged <= set(convs(mount, "escalations%2Ftier-2"))
    assert tagged <= set(convs(mount, '"tier 2"'))
    assert not tagged & set(convs(mount, '"tier escalations"'))
    assert not tagged & set(convs(mount, '"2 tier"'))
