# SPDX-License-Identifier: MIT
"""Renames reach rendered text (DESIGN.md §3): after a user is renamed (or
becomes a bot) in Drift, one sync shows the new name (role) in every cached
transcript with a message by them, leaves every other transcript byte for
byte as it was, and fetches no conversation to do it; after a contact is
renamed, the sync that refreshes the contact does the same for its
conversations; after a user is deleted, their messages are shown by id. A
re-rendered transcript is byte-identical to what a fresh
mount (an empty cache) renders for the same conversation."""
import os
import re

CONV_REQUEST = re.compile(r"^/conversations/\d+")


def transcripts(m):
    """Every conversation's transcript, by id."""
    out = {}
    for name in os.listdir(m.p("conversations")):
        if name.isdigit():
            out[int(name)] = m.read("conversations", name, "transcript.txt")
    return out


def authored(data, kind, aid):
    """The conversations with a message by that author."""
    return {int(cid) for cid, msgs in data["messages"].items()
            if any(x["author"]["type"] == kind and x["author"]["id"] == aid
                   for x in msgs)}


def sync_requests(emulator, m):
    """Runs one sync; the API requests it made."""
    since = emulator.requests()[-1]["seq"] if emulator.requests() else 0
    m.ctl("sync")
    return [r for r in emulator.requests() if r["seq"] > since]


def assert_no_conversation_fetched(reqs):
    fetched = [r["path"] for r in reqs if CONV_REQUEST.match(r["path"])]
    assert not fetched, "the re-render fetched conversations: %s" % fetched


def assert_fresh_mount_agrees(emulator, mounts, tmp_path, now):
    fresh = mounts(emulator.url, str(tmp_path / "fresh"))
    again = transcripts(fresh)
    assert again.keys() == now.keys()
    differ = [c for c in now if now[c] != again[c]]
    assert not differ, "re-rendered transcripts differ from a fresh " \
        "mount's: %s" % differ


def test_renamed_user_reaches_every_transcript_naming_them(emulator, mounts,
                                                           tmp_path):
    data = emulator.data()
    agents = sorted((u for u in data["users"] if not u["bot"]),
                    key=lambda u: -len(authored(data, "user", u["id"])))
    renamed, botted = agents[0], agents[1]
    touched = authored(data, "user", renamed["id"])
    became_bot = authored(data, "user", botted["id"])
    assert touched and became_bot and touched != became_bot
    m = mounts(emulator.url, str(tmp_path / "a"))
    before = transcripts(m)
    old = ("%s (agent" % renamed["name"]).encode()
    assert all(old in before[c] for c in touched)

    emulator.mutate(op="update_user", id=renamed["id"],
                    fields={"name": "Renata Newname"})
    emulator.mutate(op="update_user", id=botted["id"], fields={"bot": True})
    reqs = sync_requests(emulator, m)
    assert_no_conversation_fetched(reqs)

    now = transcripts(m)
    for c in touched:
        assert b"Renata Newname (agent" in now[c], c
        assert old not in now[c], c
    bot_line = ("%s (bot" % botted["name"]).encode()
    agent_line = ("%s (agent" % botted["name"]).encode()
    for c in became_bot:
        assert bot_line in now[c] and agent_line not in now[c], c
    for c in set(before) - touched - became_bot:
        assert now[c] == before[c], c
    assert_fresh_mount_agrees(emulator, mounts, tmp_path, now)


def test_renamed_contact_reaches_its_conversations(emulator, mounts, tmp_path):
    data = emulator.data()
    contacts = {c["id"]: c for c in data["contacts"]}
    # A contact with a name, who wrote in their conversations.
    cid = next(c for c in sorted(contacts)
               if contacts[c]["attributes"].get("name")
               and authored(data, "contact", c))
    old_name = contacts[cid]["attributes"]["name"]
    touched = authored(data, "contact", cid)
    m = mounts(emulator.url, str(tmp_path / "a"))
    before = transcripts(m)
    assert all(("%s (contact" % old_name).encode() in before[c]
               for c in touched)
    assert len(contacts) <= 200, "the rotation must refresh every contact"

    emulator.mutate(op="update_contact", id=cid,
                    attributes={"name": "Connie Renamed"})
    reqs = sync_requests(emulator, m)
    assert any(r["path"] == "/contacts/%d" % cid for r in reqs), \
        "the pass did not refresh the contact"
    assert_no_conversation_fetched(reqs)

    now = transcripts(m)
    for c in touched:
        assert b"Connie Renamed (contact" in now[c], c
        assert ("%s (contact" % old_name).encode() not in now[c], c
    for c in set(before) - touched:
        assert now[c] == before[c], c
    assert_fresh_mount_agrees(emulator, mounts, tmp_path, now)


def test_contact_without_a_name_is_shown_by_its_new_email(emulator, mounts,
                                                          tmp_path):
    data = emulator.data()
    contacts = {c["id"]: c for c in data["contacts"]}
    cid = next(c for c in sorted(contacts) if authored(data, "contact", c))
    emulator.mutate(op="update_contact", id=cid, attributes={"name": None})
    m = mounts(emulator.url, str(tmp_path / "a"))
    touched = authored(data, "contact", cid)
    emulator.mutate(op="update_contact", id=cid,
                    attributes={"email": "moved.away@new.example"})
    assert_no_conversation_fetched(sync_requests(emulator, m))
    now = transcripts(m)
    for c in touched:
        assert b"moved.away@new.example (contact" in now[c], c
    assert_fresh_mount_agrees(emulator, mounts, tmp_path, now)


def test_deleted_user_is_shown_by_id_as_a_fresh_mount_shows_them(emulator,
                                                                 mounts,
                                                                 tmp_path):
    data = emulator.data()
    gone = max((u for u in data["users"] if not u["bot"]),
               key=lambda u: len(authored(data, "user", u["id"])))
    touched = authored(data, "user", gone["id"])
    assert touched
    m = mounts(emulator.url, str(tmp_path / "a"))
    before = transcripts(m)
    emulator.mutate(op="delete_user", id=gone["id"])
    assert_no_conversation_fetched(sync_requests(emulator, m))
    assert "%d.json" % gone["id"] not in os.listdir(m.p("users"))
    now = transcripts(m)
    for c in touched:
        assert ("User %d (agent" % gone["id"]).encode() in now[c], c
        assert ("%s (agent" % gone["name"]).encode() not in now[c], c
    for c in set(before) - touched:
        assert now[c] == before[c], c
    assert_fresh_mount_agrees(emulator, mounts, tmp_path, now)
