# SPDX-License-Identifier: MIT
"""What a fetch overtaken by a write, or answered 404, must not lose
(DESIGN.md §3, "The cache converges"):

- a users list whose entry for a user is dropped because a write to that
  user was accepted while the list was fetched (the writer refetched it
  before a later change in Drift) fetches that user again, so the pass
  ends with what the API says, not with the writer's older copy;
- a contact the API answered 404 for is not asked for again by each
  refetch of its conversations outside a pass (counted with the
  emulator's request log), and a contact the API has again (the 404 was
  a fault) is back, with its links, after the next sync.
"""
import json
import os
import time

import pytest

from helpers import wait_for


def last_seq(emulator):
    reqs = emulator.requests()
    return reqs[-1]["seq"] if reqs else 0


def requests_since(emulator, seq):
    return [r for r in emulator.requests() if r["seq"] > seq]


def pending_faults(emulator):
    return emulator.admin("GET", "faults")["pending"]


def a_conversation(emulator):
    """A conversation whose contact has another one too."""
    by_contact = {}
    for c in emulator.data()["conversations"]:
        by_contact.setdefault(c["contactId"], []).append(c)
    for convs in by_contact.values():
        if len(convs) > 1:
            return convs[0]
    pytest.fail("the emulator's data has no contact with two conversations")


def test_users_list_entry_overtaken_by_a_write_is_fetched_again(mount,
                                                                emulator):
    """The interleaving, held open by a stall on the pass's users list
    (answered with the data as it is when the stall ends): the list is
    asked for; a user is written through the mount and refetched by the
    writer; Drift changes that user; the list is answered. The list's copy
    is dropped (a write overtook it), and the user must be fetched again
    rather than left as the writer's copy until the next pass."""
    user = [x for x in emulator.data()["users"] if not x.get("bot")][1]
    uid = user["id"]
    p = mount.p("users", "%d.json" % uid)
    obj = json.loads(open(p).read())
    emulator.add_fault(kind="stall", seconds=3, method="GET",
                       path="^/users/list$")
    pass_, res = mount.ctl_in_background("sync")
    wait_for(lambda: not pending_faults(emulator), 10,
             "the pass's users list to be held")
    since = last_seq(emulator)
    obj["alias"] = "Overtaken Alias"
    with open(p, "w") as f:
        f.write(json.dumps(obj))

    def refetched():
        return [r for r in requests_since(emulator, since)
                if r["method"] == "GET" and r["path"] == "/users/%d" % uid]
    wait_for(refetched, 10, "the writer's refetch of the user")
    refetch_seq = refetched()[-1]["seq"]
    emulator.mutate(op="update_user", id=uid, fields={"phone": "555-LATER"})
    changed_at = time.time()
    pass_.join(60)
    assert not pass_.is_alive()
    assert res.get("ok"), res
    lists = [r for r in requests_since(emulator, since)
             if r["path"] == "/users/list"]
    # The interleaving held (else this test proves nothing).
    assert lists and lists[0]["seq"] > refetch_seq, lists
    assert lists[0]["time"] >= changed_at - 0.01, (lists[0], changed_at)
    got = mount.json("users", "%d.json" % uid)
    assert got["alias"] == "Overtaken Alias"
    assert got.get("phone") == "555-LATER", got


@pytest.mark.parametrize("how", ["deleted", "a 404 fault"])
def test_gone_contact_not_asked_again_outside_a_pass(mount, emulator, how):
    """A conversation refetched three times outside a pass (driftctl sync
    conversations/ID, as a lookup or a write's refetch does) asks for its
    contact once, when the API answers 404 for it; the next sync asks
    again, and a contact the API has again comes back with its links."""
    conv = a_conversation(emulator)
    cid, kid = conv["id"], conv["contactId"]
    assert os.path.isdir(mount.p("contacts", str(kid)))
    if how == "deleted":
        emulator.mutate(op="delete_contact", id=kid)
    else:
        emulator.add_fault(kind="status", status=404, method="GET",
                           path="^/contacts/%d$" % kid)
    since = last_seq(emulator)
    for _ in range(3):
        mount.ctl("sync conversations/%d" % cid)
    made = requests_since(emulator, since)
    convs = [r for r in made if r["path"] == "/conversations/%d" % cid]
    asked = [r for r in made if r["path"] == "/contacts/%d" % kid]
    assert len(convs) == 3, made
    assert [r["status"] for r in asked] == [404], asked
    assert str(kid) not in os.listdir(mount.p("contacts"))
    assert "contact" not in os.listdir(mount.p("conversations", str(cid)))
    fresh = None
    if how == "a 404 fault":
        # A conversation of it the cache never held, looked up now: not
        # asked for either, and linked by the next sync all the same.
        fresh = emulator.mutate(op="new_conversation", contactId=kid)["id"]
        since = last_seq(emulator)
        assert os.path.isdir(mount.p("conversations", str(fresh)))
        made = requests_since(emulator, since)
        assert [r for r in made if r["path"] == "/conversations/%d" % fresh]
        assert not [r for r in made if r["path"] == "/contacts/%d" % kid]
        assert "contact" not in os.listdir(mount.p("conversations",
                                                   str(fresh)))

    # The next sync asks again (its check of the removed contact's
    # conversations): what the API says then is what the tree shows.
    since = last_seq(emulator)
    mount.ctl("sync")
    asked = [r for r in requests_since(emulator, since)
             if r["path"] == "/contacts/%d" % kid]
    assert asked, "the sync did not ask for the contact"
    link = mount.p("conversations", str(cid), "contact")
    if how == "deleted":
        assert str(kid) not in os.listdir(mount.p("contacts"))
        assert not os.path.lexists(link)
    else:
        assert os.path.isdir(mount.p("contacts", str(kid)))
        assert os.readlink(link).rstrip("/").endswith("contacts/%d" % kid)
        assert str(cid) in os.listdir(mount.p("contacts", str(kid),
                                              "conversations"))
        link = mount.p("conversations", str(fresh), "contact")
        assert os.readlink(link).rstrip("/").endswith("contacts/%d" % kid)
        assert str(fresh) in os.listdir(mount.p("contacts", str(kid),
                                                "conversations"))
