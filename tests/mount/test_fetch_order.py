# SPDX-License-Identifier: MIT
"""Two fetches of one object that overlap in time store in the order of
their answers, not of their commits (DESIGN.md §3, "The cache
converges"):

For a conversation, a contact and a user, fetch A (the refetch after a
write through the mount) is asked first and its answer (the object as it
was) is held back by the emulator (a stall that answers with the data as
it was when the request came); Drift changes the object; fetch B (a sync
pass for the conversation, `ctl sync PATH` for the others) gets the new
answer and stores it while A is still held. When A's old answer finally
comes, it must not be stored over B's: after both, the file shows what
the API says. The same for a lookup by email of an uncached contact as
A, which does not know the contact's id when it asks. Each test checks
that the interleaving happened (A still held when B returned, and B's
request answered before A's). All four failed before the fetches in
flight were ordered (sync_fetch_overtaken, sync.c).
"""
import json
import os
import threading

import pytest

from helpers import Mount, wait_for

# How long fetch A's answer is held: long enough for a pass of the small
# seeded account to finish meanwhile (checked: A must still be held when
# B returns), short of the mount's request timeout below.
HOLD_S = 4


@pytest.fixture
def mount(emulator, tmp_path):
    """As conftest's, with a request deadline well past HOLD_S."""
    m = Mount(emulator.url, str(tmp_path), opts=["timeout=30"],
              env={"DRIFTFS_TEST_LANDED_GRACE_MS": "1000"})
    yield m
    m.unmount()
    bad = m.suspicious()
    assert not bad, "driftfs reported: %s" % bad


def pending_faults(emulator):
    return emulator.admin("GET", "faults")["pending"]


def last_seq(emulator):
    reqs = emulator.requests()
    return reqs[-1]["seq"] if reqs else 0


def gets_since(emulator, seq, path):
    return [r for r in emulator.requests()
            if r["seq"] > seq and r["method"] == "GET" and r["path"] == path]


def in_background(fn):
    """fn() on a thread of its own: the thread and a dict that gets "ok",
    or "err" with the exception."""
    res = {}

    def run():
        try:
            fn()
            res["ok"] = True
        except Exception as e:    # reported by the caller's assertion
            res["err"] = e
    t = threading.Thread(target=run)
    t.start()
    return t, res


def write_file(path, data):
    with open(path, "w") as f:
        f.write(data)


def overlap(mount, emulator, path, write_a, change, command_b, path_b=None):
    """Fetch A, the GET of path that follows write_a() (a write through
    the mount, or a lookup, on a thread), is answered with the object
    before change() and held for HOLD_S; meanwhile change() runs and
    command_b (a ctl command: its own fetch, a GET of path_b, by default
    path) fetches and stores the new object. Returns when both are done.
    (Two ctl commands would not overlap: the kernel serialises writes to
    one file.)"""
    since = last_seq(emulator)
    path_b = path_b or path
    emulator.add_fault(kind="stall", seconds=HOLD_S, process_first=True,
                       method="GET", path="^%s$" % path)
    a, res = in_background(write_a)
    try:
        # The fault is taken as A's request is answered (then held).
        wait_for(lambda: not pending_faults(emulator), 10,
                 "fetch A's request to be answered and held")
        change()
        mount.ctl(command_b)
        held = not [g for g in gets_since(emulator, since, path)
                    if g["fault"] == "stall"]
    finally:
        a.join(60)
    assert not a.is_alive()
    assert res.get("ok"), res
    assert held, "fetch A ended before fetch B: the overlap was not tested"
    # close() returns once the write is sent and its refetch stored (the
    # outbox's hooks run inside it), a lookup once it stored what it
    # found: A has committed (or not) by now.
    # The log records a request once answered: B's first, then A's.
    held_seq = [g["seq"] for g in gets_since(emulator, since, path)
                if g["fault"] == "stall"]
    b_seq = [g["seq"] for g in gets_since(emulator, since, path_b)
             if g["fault"] is None]
    assert held_seq and b_seq and b_seq[0] < held_seq[0], (held_seq, b_seq)


def an_open_conversation(emulator):
    for c in emulator.data()["conversations"]:
        if c["status"] == "open":
            return c
    pytest.fail("the emulator's data has no open conversation")


def test_conversation_refetch_overtaken_by_the_sync_pass(mount, emulator):
    """A write's refetch of a conversation that asked before the sync
    pass's own fetch and is answered after it does not overwrite the
    pass's newer copy: after the pass, conversation.json is the API's."""
    cid = an_open_conversation(emulator)["id"]
    assert mount.json("conversations", str(cid),
                      "conversation.json")["status"] == "open"
    overlap(mount, emulator, "/conversations/%d" % cid,
            lambda: write_file(mount.p("conversations", str(cid), "reply"),
                               "a reply whose refetch is held\n"),
            lambda: emulator.mutate(op="set_status", conversationId=cid,
                                    status="closed"),
            "sync")
    api = [c for c in emulator.data()["conversations"] if c["id"] == cid][0]
    assert api["status"] == "closed"
    assert mount.json("conversations", str(cid),
                      "conversation.json")["status"] == "closed"


def test_contact_fetches_store_in_answer_order(mount, emulator):
    """A write's refetch of a contact, asked first and answered last, does
    not overwrite the newer copy of a `ctl sync` of it."""
    kid = emulator.data()["conversations"][0]["contactId"]
    before = mount.json("contacts", str(kid), "contact.json")
    tags = mount.read("contacts", str(kid), "tags", mode="r")
    assert before["attributes"].get("name") != "Renamed Later"
    overlap(mount, emulator, "/contacts/%d" % kid,
            lambda: write_file(mount.p("contacts", str(kid), "tags"),
                               tags + "held-refetch\n"),
            lambda: emulator.mutate(op="update_contact", id=kid,
                                    attributes={"name": "Renamed Later"}),
            "sync contacts/%d" % kid)
    after = mount.json("contacts", str(kid), "contact.json")
    assert after["attributes"]["name"] == "Renamed Later", json.dumps(after)


def user_refetch_held(mount, emulator, nth, phone, ctl, path_b=None):
    """The nth user (not a bot): its refetch after an alias written
    through the mount is held while Drift changes its phone and `ctl`
    fetches it again (its request path_b); the user's file after."""
    uid = [u for u in emulator.data()["users"] if not u.get("bot")][nth]["id"]
    obj = mount.json("users", "%d.json" % uid)
    obj["alias"] = "Held Alias"
    overlap(mount, emulator, "/users/%d" % uid,
            lambda: write_file(mount.p("users", "%d.json" % uid),
                               json.dumps(obj)),
            lambda: emulator.mutate(op="update_user", id=uid,
                                    fields={"phone": phone}),
            ctl % uid if "%d" in ctl else ctl, path_b=path_b)
    return mount.json("users", "%d.json" % uid)


def test_user_fetches_store_in_answer_order(mount, emulator):
    """A write's refetch of a user, asked first and answered last, does
    not overwrite the newer copy of a `ctl sync` of it."""
    after = user_refetch_held(mount, emulator, 1, "555-LATER",
                              "sync users/%d")
    assert after.get("phone") == "555-LATER", after
    assert after["alias"] == "Held Alias", after


def test_lookup_by_email_overtaken_by_a_fetch(mount, emulator):
    """A lookup of an uncached contact by email, asked first and answered
    last, does not store its copy over the newer one a `ctl sync` of the
    contact stored meanwhile (the lookup did not know the contact's id
    when it asked)."""
    data = emulator.data()
    linked = {c["contactId"] for c in data["conversations"]}
    contact = [c for c in data["contacts"] if c["id"] not in linked][0]
    kid, email = contact["id"], contact["attributes"]["email"]
    assert str(kid) not in os.listdir(mount.p("contacts"))
    overlap(mount, emulator, "/contacts",
            lambda: os.lstat(mount.p("contacts", "by-email", email)),
            lambda: emulator.mutate(op="update_contact", id=kid,
                                    attributes={"name": "Renamed Later"}),
            "sync contacts/%d" % kid, path_b="/contacts/%d" % kid)
    assert os.readlink(mount.p("contacts", "by-email", email)) == \
        "../%d" % kid
    after = mount.json("contacts", str(kid), "contact.json")
    assert after["attributes"]["name"] == "Renamed Later", json.dumps(after)


def test_user_refetch_overtaken_by_the_users_list(mount, emulator):
    """A write's refetch of a user, asked first and answered last, does
    not overwrite the newer copy the sync pass's users list stored: after
    the pass, the user's file is the API's."""
    after = user_refetch_held(mount, emulator, 2, "555-LIST", "sync",
                              path_b="/users/list")
    assert after.get("phone") == "555-LIST", after
