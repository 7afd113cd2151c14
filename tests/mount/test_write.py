# SPDX-License-Identifier: MIT
"""Writes (DESIGN.md §4) on a real mount: each becomes exactly the API call
it should, once, and invalid input sends nothing."""
import errno
import json
import os
import subprocess

import pytest


def api_calls(emulator, since, method=None, path_re=None):
    import re
    out = []
    for r in emulator.requests():
        if r["seq"] <= since:
            continue
        if method and r["method"] != method:
            continue
        if path_re and not re.search(path_re, r["path"]):
            continue
        out.append(r)
    return out


def last_seq(emulator):
    reqs = emulator.requests()
    return reqs[-1]["seq"] if reqs else 0


def write(path, text, mode="w"):
    with open(path, mode) as f:
        f.write(text)


def test_reply_and_note_post_one_message_each(mount, emulator):
    conv = emulator.data()["conversations"][0]
    cid = str(conv["id"])
    seq = last_seq(emulator)
    write(mount.p("conversations", cid, "reply"), "Hello <world> & co\nline two\n")
    write(mount.p("conversations", cid, "note"), "internal only\n")
    posts = api_calls(emulator, seq, "POST", r"/conversations/%s/messages$" % cid)
    assert len(posts) == 2
    assert json.loads(posts[0]["body"]) == {
        "type": "chat", "body": "Hello &lt;world&gt; &amp; co<br>line two"}
    assert json.loads(posts[1]["body"]) == {"type": "private_note", "body": "internal only"}
    # The new messages show at once.
    text = mount.read("conversations", cid, "transcript.txt", mode="r")
    assert "line two" in text and "internal only" in text
    msgs = emulator.data()["messages"][cid]
    assert "%d.json" % msgs[-1]["id"] in os.listdir(mount.p("conversations", cid, "messages"))


def test_messages_new_and_invalid_json(mount, emulator):
    cid = str(emulator.data()["conversations"][1]["id"])
    p = mount.p("conversations", cid, "messages", "new")
    seq = last_seq(emulator)
    with pytest.raises(OSError) as e:
        write(p, '{"type": "chat", "body": "x", "colour": "red"}')
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        write(p, '{"type": "chat", "body": ')
    assert e.value.errno == errno.EINVAL
    assert api_calls(emulator, seq) == []
    assert "colour" in mount.read(".driftfs", "errors", mode="r")
    write(p, json.dumps({"type": "chat", "body": "<p>json</p>",
                         "buttons": [{"label": "Yes", "value": "Yes", "type": "reply"}]}))
    posts = api_calls(emulator, seq, "POST", r"/messages$")
    assert len(posts) == 1
    created = emulator.data()["messages"][cid][-1]["id"]
    assert mount.read("conversations", cid, "messages", "new", mode="r") == "%d\n" % created


def test_create_contact_and_read_back_its_id(mount, emulator):
    seq = last_seq(emulator)
    write(mount.p("contacts", "new"), json.dumps({"email": "new.person@example.com",
                                                  "name": "New Person"}))
    posts = api_calls(emulator, seq, "POST", r"^/contacts$")
    assert len(posts) == 1
    assert json.loads(posts[0]["body"]) == {
        "attributes": {"email": "new.person@example.com", "name": "New Person"}}
    new_id = mount.read("contacts", "new", mode="r").strip()
    assert new_id.isdigit()
    assert new_id in os.listdir(mount.p("contacts"))
    assert mount.json("contacts", new_id, "contact.json")["attributes"]["name"] == "New Person"
    with pytest.raises(OSError) as e:
        write(mount.p("contacts", "new"), json.dumps({"name": "no email"}))
    assert e.value.errno == errno.EINVAL


def test_edit_contact_json_patches_changed_attributes_only(mount, emulator):
    c = emulator.data()["conversations"][2]["contactId"]
    p = mount.p("contacts", str(c), "contact.json")
    obj = json.loads(open(p).read())
    obj["attributes"]["phone"] = "555-000-1111"
    seq = last_seq(emulator)
    write(p, json.dumps(obj, indent=2))
    patches = api_calls(emulator, seq, "PATCH")
    assert len(patches) == 1
    assert patches[0]["path"] == "/contacts/%d" % c
    assert json.loads(patches[0]["body"]) == {"attributes": {"phone": "555-000-1111"}}
    assert mount.json("contacts", str(c), "contact.json")["attributes"]["phone"] == "555-000-1111"
    # Read-only field: EINVAL, nothing sent, file unchanged.
    before = open(p).read()
    obj["id"] = 1
    seq = last_seq(emulator)
    with pytest.raises(OSError) as e:
        write(p, json.dumps(obj))
    assert e.value.errno == errno.EINVAL
    assert api_calls(emulator, seq) == []
    assert open(p).read() == before
    assert "'id' is read-only" in mount.read(".driftfs", "errors", mode="r")


def test_sed_in_place_edits_through_a_scratch_file(mount, emulator):
    c = emulator.data()["conversations"][3]["contactId"]
    p = mount.p("contacts", str(c), "contact.json")
    old = json.loads(open(p).read())["attributes"]["name"]
    seq = last_seq(emulator)
    r = subprocess.run(["sed", "-i", 's/"name": ".*"/"name": "Sed Edited"/', p],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    patches = api_calls(emulator, seq, "PATCH")
    assert [json.loads(x["body"]) for x in patches] == [{"attributes": {"name": "Sed Edited"}}]
    assert old != "Sed Edited"
    assert mount.json("contacts", str(c), "contact.json")["attributes"]["name"] == "Sed Edited"
    # The scratch file is gone.
    assert not [n for n in os.listdir(mount.p("contacts", str(c))) if n.startswith("sed")]


def test_tags_lines_add_and_remove(mount, emulator):
    data = emulator.data()
    c = next(x for x in data["contacts"] if x["attributes"].get("tags")
             and x["id"] in {v["contactId"] for v in data["conversations"]})
    p = mount.p("contacts", str(c["id"]), "tags")
    lines = open(p).read().splitlines()
    seq = last_seq(emulator)
    write(p, "\n".join(lines[1:] + ["brand-new"]) + "\n")
    calls = api_calls(emulator, seq)
    adds = [x for x in calls if x["method"] == "POST"]
    dels = [x for x in calls if x["method"] == "DELETE"]
    assert len(adds) == 1 and json.loads(adds[0]["body"]) == [{"name": "brand-new"}]
    assert len(dels) == 1 and dels[0]["path"].startswith("/contacts/%d/tags/" % c["id"])
    assert "brand-new" in open(p).read().splitlines()


def test_timeline_and_unsubscribe(mount, emulator):
    c = emulator.data()["conversations"][0]["contactId"]
    seq = last_seq(emulator)
    write(mount.p("contacts", str(c), "timeline"),
          'Invoice paid\n{"event": "Renewed", "createdAt": 1700000000000}\n', "a")
    posts = api_calls(emulator, seq, "POST", r"/contacts/timeline$")
    assert [json.loads(x["body"]) for x in posts] == [
        {"contactId": c, "event": "Invoice paid"},
        {"contactId": c, "event": "Renewed", "createdAt": 1700000000000}]
    seq = last_seq(emulator)
    write(mount.p("contacts", "unsubscribe"), "a@example.com\nb@example.com\n")
    posts = api_calls(emulator, seq, "POST", r"/emails/unsubscribe$")
    assert [json.loads(x["body"]) for x in posts] == [["a@example.com", "b@example.com"]]


def test_user_edit_and_refusals(mount, emulator):
    u = next(x for x in emulator.data()["users"] if not x.get("bot"))
    p = mount.p("users", "%d.json" % u["id"])
    obj = json.loads(open(p).read())
    obj["alias"] = "Ace"
    seq = last_seq(emulator)
    write(p, json.dumps(obj))
    patches = api_calls(emulator, seq, "PATCH")
    assert len(patches) == 1
    assert patches[0]["path"] == "/users/update" and "userId=%d" % u["id"] in patches[0]["query"]
    assert json.loads(patches[0]["body"]) == {"alias": "Ace"}
    obj["role"] = "admin" if obj.get("role") != "admin" else "agent"
    with pytest.raises(OSError) as e:
        write(p, json.dumps(obj))
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        os.unlink(p)
    assert e.value.errno == errno.EPERM


def test_delete_contact_with_rm_r(mount, emulator):
    data = emulator.data()
    c = data["conversations"][5]["contactId"]
    seq = last_seq(emulator)
    r = subprocess.run(["rm", "-r", mount.p("contacts", str(c))], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    dels = api_calls(emulator, seq, "DELETE")
    assert [x["path"] for x in dels] == ["/contacts/%d" % c]
    assert str(c) not in os.listdir(mount.p("contacts"))


def test_message_edit_and_delete(mount, emulator):
    data = emulator.data()
    conv = next(c for c in data["conversations"] if len(data["messages"][str(c["id"])]) > 2)
    cid = str(conv["id"])
    msg = data["messages"][cid][0]
    p = mount.p("conversations", cid, "messages", "%d.json" % msg["id"])
    obj = json.loads(open(p).read())
    obj["body"] = "<p>edited</p>"
    seq = last_seq(emulator)
    write(p, json.dumps(obj))
    os.unlink(mount.p("conversations", cid, "messages", "%d.json" % data["messages"][cid][1]["id"]))
    posts = [json.loads(x["body"]) for x in api_calls(emulator, seq, "POST")]
    assert posts == [
        {"type": "edit", "editedMessageId": msg["id"], "editType": "replace_body",
         "body": "<p>edited</p>"},
        {"type": "edit", "editedMessageId": data["messages"][cid][1]["id"],
         "editType": "delete", "body": ""}]


def test_new_conversation(mount, emulator):
    seq = last_seq(emulator)
    write(mount.p("conversations", "new"), json.dumps(
        {"email": "lead@example.com", "message": "Started on our site",
         "integrationSource": "driftfs test"}))
    posts = api_calls(emulator, seq, "POST", r"/conversations/new$")
    assert len(posts) == 1
    assert json.loads(posts[0]["body"]) == {
        "email": "lead@example.com",
        "message": {"body": "Started on our site",
                    "attributes": {"integrationSource": "driftfs test"}}}
    new_id = mount.read("conversations", "new", mode="r").strip()
    assert new_id in os.listdir(mount.p("conversations"))


def test_read_only_still_refused(mount, emulator):
    cid = str(emulator.data()["conversations"][0]["id"])
    with pytest.raises(PermissionError):
        open(mount.p("conversations", cid, "transcript.txt"), "a")


def test_editors_vim_heredoc_and_rsync_into_the_mount(mount, emulator, tmp_path):
    import shutil
    data = emulator.data()
    c = data["conversations"][6]["contactId"]
    p = mount.p("contacts", str(c), "contact.json")
    if shutil.which("vim"):
        seq = last_seq(emulator)
        r = subprocess.run(["vim", "-es", "-u", "NONE", "-i", "NONE",
                            "-c", r'%s/"phone": "[^"]*"/"phone": "555-999-0000"/',
                            "-c", "wq", p], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        patches = [json.loads(x["body"]) for x in api_calls(emulator, seq, "PATCH")]
        assert patches == [{"attributes": {"phone": "555-999-0000"}}]
        # No swap file, backup or 4913 probe reached the API or stayed.
        assert sorted(os.listdir(mount.p("contacts", str(c)))) == sorted(
            ["contact.json", "tags", "timeline", "conversations"])
    # A here-doc rewrite (open with O_TRUNC, write, close).
    obj = json.loads(open(p).read())
    obj["attributes"]["city"] = "Porto"
    seq = last_seq(emulator)
    subprocess.run("cat > '%s' <<'EOF'\n%s\nEOF" % (p, json.dumps(obj, indent=2)),
                   shell=True, check=True)
    patches = [json.loads(x["body"]) for x in api_calls(emulator, seq, "PATCH")]
    assert patches == [{"attributes": {"city": "Porto"}}]
    # rsync into the mount: temporary file, then rename over the target.
    src = tmp_path / "src"
    src.mkdir()
    obj = json.loads(open(p).read())
    obj["attributes"]["city"] = "Faro"
    (src / "contact.json").write_text(json.dumps(obj, indent=2) + "\n")
    seq = last_seq(emulator)
    r = subprocess.run(["rsync", "-rt", "--no-perms", str(src) + "/",
                        mount.p("contacts", str(c)) + "/"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    patches = [json.loads(x["body"]) for x in api_calls(emulator, seq, "PATCH")]
    assert patches == [{"attributes": {"city": "Faro"}}]
    assert mount.json("contacts", str(c), "contact.json")["attributes"]["city"] == "Faro"


def test_outbox_survives_kill_and_delivers_once(mount, emulator):
    import signal
    conv = emulator.data()["conversations"][7]
    cid = str(conv["id"])
    emulator.add_fault(kind="status", status=503, count=1000, method="POST")
    write(mount.p("conversations", cid, "reply"), "queued while the API fails\n")
    pending = os.listdir(mount.p(".driftfs", "outbox"))
    assert len(pending) == 1
    item = mount.json(".driftfs", "outbox", pending[0])
    assert item["method"] == "POST" and item["body"]["body"] == "queued while the API fails"
    assert item["path"].endswith("conversations/%s/reply" % cid)
    # Crash: no clean unmount, nothing flushed by us.
    mount.proc.send_signal(signal.SIGKILL)
    mount.proc.wait()
    subprocess.run(["fusermount3", "-uz", mount.path], capture_output=True)
    mount.errlog.close()
    mount.proc = None
    emulator.clear_faults()
    seq = last_seq(emulator)
    mount.start()
    from helpers import wait_for
    wait_for(lambda: not os.listdir(mount.p(".driftfs", "outbox")), 30,
             "the outbox to drain")
    posts = api_calls(emulator, seq, "POST", r"/conversations/%s/messages$" % cid)
    assert len(posts) == 1
    assert json.loads(posts[0]["body"])["body"] == "queued while the API fails"
    bodies = [m["body"] for m in emulator.data()["messages"][cid]]
    assert bodies.count("queued while the API fails") == 1


def test_outbox_cancel_by_unlink(mount, emulator):
    cid = str(emulator.data()["conversations"][8]["id"])
    emulator.add_fault(kind="status", status=503, count=1000, method="POST")
    write(mount.p("conversations", cid, "note"), "never mind\n")
    pending = os.listdir(mount.p(".driftfs", "outbox"))
    assert len(pending) == 1
    os.unlink(mount.p(".driftfs", "outbox", pending[0]))
    assert os.listdir(mount.p(".driftfs", "outbox")) == []
    emulator.clear_faults()
    seq = last_seq(emulator)
    import time
    time.sleep(2)
    assert api_calls(emulator, seq, "POST") == []


def test_outbox_listing_follows_each_row(mount, emulator):
    """The kernel caches directory listings (outbox included): a queued row
    shows at once, and so does its delivery."""
    from helpers import wait_for
    outbox = mount.p(".driftfs", "outbox")
    assert os.listdir(outbox) == []          # now in the kernel's cache
    cid = str(emulator.data()["conversations"][9]["id"])
    emulator.add_fault(kind="status", status=503, count=1000, method="POST")
    write(mount.p("conversations", cid, "note"), "listed at once\n")
    assert len(os.listdir(outbox)) == 1
    emulator.clear_faults()
    mount.ctl("sync")
    wait_for(lambda: os.listdir(outbox) == [], 60, "the delivered row to leave the listing")


def test_write_racing_a_background_sync(mount, emulator):
    import threading
    import time
    data = emulator.data()
    c = data["conversations"][0]["contactId"]
    p = mount.p("contacts", str(c), "contact.json")
    emulator.faults(latency_ms=120)
    # Every cached contact is refetched by this pass while we write one.
    emulator.mutate(op="add_message", conversationId=data["conversations"][0]["id"],
                    body="<p>bump</p>", authorType="contact", authorId=c)
    syncer = threading.Thread(target=mount.ctl, args=("sync",))
    syncer.start()
    time.sleep(0.4)
    obj = json.loads(open(p).read())
    obj["attributes"]["phone"] = "555-123-9876"
    write(p, json.dumps(obj))
    syncer.join(120)
    emulator.faults(latency_ms=0)
    assert mount.json("contacts", str(c), "contact.json")["attributes"]["phone"] == "555-123-9876"
    server = next(x for x in emulator.data()["contacts"] if x["id"] == c)
    assert server["attributes"]["phone"] == "555-123-9876"


def test_queued_writes_to_one_object_keep_their_order(mount, emulator):
    from helpers import wait_for
    c = emulator.data()["conversations"][1]["contactId"]
    p = mount.p("contacts", str(c), "contact.json")
    emulator.add_fault(kind="status", status=503, count=1, method="PATCH")
    obj = json.loads(open(p).read())
    obj["attributes"]["phone"] = "555-000-0001"
    write(p, json.dumps(obj))           # refused with 503: queued
    obj["attributes"]["phone"] = "555-000-0002"
    write(p, json.dumps(obj))           # must wait behind the first
    wait_for(lambda: not os.listdir(mount.p(".driftfs", "outbox")), 30, "the outbox")
    server = next(x for x in emulator.data()["contacts"] if x["id"] == c)
    assert server["attributes"]["phone"] == "555-000-0002"


def test_api_refusal_fails_close_with_mapped_errno(mount, emulator):
    c = emulator.data()["conversations"][2]["contactId"]
    p = mount.p("contacts", str(c), "contact.json")
    obj = json.loads(open(p).read())
    obj["attributes"]["phone"] = "555-404-0000"
    for status, err in ((422, errno.EINVAL), (404, errno.ENOENT), (403, errno.EACCES)):
        emulator.add_fault(kind="status", status=status, count=1, method="PATCH")
        with pytest.raises(OSError) as e:
            write(p, json.dumps(obj))
        assert e.value.errno == err
    assert os.listdir(mount.p(".driftfs", "outbox")) == []
    assert "HTTP 422" in mount.read(".driftfs", "errors", mode="r")


def test_account_edit(mount, emulator):
    a = emulator.data()["accounts"][0]
    name = a["accountId"].replace("%", "%25").replace("/", "%2F") + ".json"
    p = mount.p("accounts", name)
    obj = json.loads(open(p).read())
    obj["name"] = "Renamed Inc"
    seq = last_seq(emulator)
    write(p, json.dumps(obj))
    patches = api_calls(emulator, seq, "PATCH")
    assert len(patches) == 1 and patches[0]["path"] == "/accounts/update"
    assert json.loads(patches[0]["body"]) == {
        "name": "Renamed Inc", "accountId": a["accountId"], "ownerId": a["ownerId"]}
    assert mount.json("accounts", name)["name"] == "Renamed Inc"
    obj["accountId"] = "other"
    with pytest.raises(OSError) as e:
        write(p, json.dumps(obj))
    assert e.value.errno == errno.EINVAL


def account_file(mount, a):
    name = a["accountId"].replace("%", "%25").replace("/", "%2F") + ".json"
    return mount.p("accounts", name)


def test_queued_account_edits_keep_their_order(mount, emulator):
    """DESIGN §4: writes to one object reach the API in the order their
    close() returned. An account PATCH that met a 503 waits in the outbox;
    a newer edit of the same account must not overtake it (it did: account
    edits had no target, and the older one landed last and won)."""
    from helpers import wait_for
    a = emulator.data()["accounts"][1]
    p = account_file(mount, a)
    seq = last_seq(emulator)
    # Every try of the first close() meets a 503 (a PATCH is retried
    # within the call too); the API is back before the second edit.
    emulator.add_fault(kind="status", status=503, count=1000, method="PATCH",
                       path="^/accounts/update$")
    obj = json.loads(open(p).read())
    obj["name"] = "First Edit Ltd"
    write(p, json.dumps(obj))           # 503s: queued
    assert len(os.listdir(mount.p(".driftfs", "outbox"))) == 1
    emulator.clear_faults()
    obj["name"] = "Second Edit Ltd"
    write(p, json.dumps(obj))           # must wait behind the first
    wait_for(lambda: not os.listdir(mount.p(".driftfs", "outbox")), 30, "the outbox")
    server = next(x for x in emulator.data()["accounts"]
                  if x["accountId"] == a["accountId"])
    assert server["name"] == "Second Edit Ltd"
    sent = [(r["status"], json.loads(r["body"])["name"])
            for r in api_calls(emulator, seq, "PATCH", r"^/accounts/update$")]
    assert [n for s, n in sent if s == 200] == ["First Edit Ltd", "Second Edit Ltd"]
    assert sent[0] == (503, "First Edit Ltd")
    assert mount.json("accounts", os.path.basename(p))["name"] == "Second Edit Ltd"


def outbox_rows(mount):
    d = mount.p(".driftfs", "outbox")
    return [mount.json(".driftfs", "outbox", n) for n in sorted(os.listdir(d))]


@pytest.mark.parametrize("kind", ["reply", "note"])
def test_reply_stored_before_a_5xx_is_posted_once(mount, emulator, kind):
    """A gateway that timed out after the backend stored the message answers
    5xx: the message may be there. The outbox checks before it resends (it
    resent at once, and the message was posted twice)."""
    from helpers import wait_for
    cid = str(emulator.data()["conversations"][10]["id"])
    text = "stored, then the gateway said 504 (%s)" % kind
    seq = last_seq(emulator)
    emulator.add_fault(kind="status", status=504, process_first=True,
                       method="POST", path=r"^/conversations/\d+/messages$")
    write(mount.p("conversations", cid, kind), "%s\n" % text)   # queued
    rows = outbox_rows(mount)
    assert len(rows) == 1 and rows[0]["state"] == "sending"
    wait_for(lambda: not os.listdir(mount.p(".driftfs", "outbox")), 30, "the outbox")
    bodies = [m["body"] for m in emulator.data()["messages"][cid]]
    assert bodies.count(text) == 1
    assert len(api_calls(emulator, seq, "POST", r"/conversations/%s/messages$" % cid)) == 1
    # Found landed: the cache fetches the conversation as after a success.
    wait_for(lambda: text in mount.read("conversations", cid, "transcript.txt",
                                        mode="r"), 30, "the message in the transcript")


def test_messages_new_with_a_lost_answer_and_a_failing_check(mount, emulator):
    """While the check itself cannot be made (the API still fails), the
    write stays queued as "sending": neither dropped nor resent blindly.
    Once the API answers, the check finds it, and it is not sent again."""
    from helpers import wait_for
    cid = str(emulator.data()["conversations"][11]["id"])
    seq = last_seq(emulator)
    emulator.add_fault(kind="status", status=502, process_first=True,
                       method="POST", path=r"^/conversations/\d+/messages$")
    emulator.add_fault(kind="status", status=503, count=10000, method="GET",
                       path=r"^/conversations/%s/messages$" % cid)
    body = "<p>Quarterly   numbers &amp; <b>plans</b></p>"
    write(mount.p("conversations", cid, "messages", "new"),
          json.dumps({"type": "chat", "body": body}))
    # Two checks fail (each call is retried inside too); a blind resend
    # would show as a second POST.
    wait_for(lambda: len(api_calls(emulator, seq, "POST")) > 1 or
             len([r for r in api_calls(emulator, seq, "GET",
                                       r"^/conversations/%s/messages$" % cid)
                  if r["status"] == 503]) >= 6, 60, "two failed checks")
    assert len(api_calls(emulator, seq, "POST")) == 1
    rows = outbox_rows(mount)
    assert len(rows) == 1 and rows[0]["state"] == "sending"
    assert len(api_calls(emulator, seq, "POST")) == 1
    emulator.clear_faults()
    wait_for(lambda: not os.listdir(mount.p(".driftfs", "outbox")), 60, "the outbox")
    bodies = [m["body"] for m in emulator.data()["messages"][cid]]
    assert bodies.count(body) == 1
    assert len(api_calls(emulator, seq, "POST")) == 1


def test_reply_found_landed_by_its_text_not_its_bytes(mount, emulator):
    """The API may store a message's HTML otherwise than it was sent. The
    check compares text (tags dropped, entities decoded, white space
    folded), so a reply stored as different HTML is still found."""
    from helpers import wait_for
    cid = int(emulator.data()["conversations"][12]["id"])
    seq = last_seq(emulator)
    emulator.add_fault(kind="status", status=502, method="POST",
                       path=r"^/conversations/\d+/messages$")
    # No check can be made until the stored copy is in place.
    emulator.add_fault(kind="status", status=503, count=10000, method="GET",
                       path=r"^/conversations/%d/messages$" % cid)
    write(mount.p("conversations", str(cid), "reply"), "Tea & cake\nat  four\n")
    assert len(outbox_rows(mount)) == 1
    # What the backend stored before its gateway answered 502.
    emulator.mutate(op="add_message", conversationId=cid, authorType="user",
                    body="<p>Tea &amp; cake<br/>at four</p>")
    emulator.clear_faults()
    wait_for(lambda: not os.listdir(mount.p(".driftfs", "outbox")), 60, "the outbox")
    assert len(api_calls(emulator, seq, "POST", r"/conversations/%d/messages$" % cid)) == 1
    bodies = [m["body"] for m in emulator.data()["messages"][str(cid)]]
    assert [b for b in bodies if "cake" in b] == ["<p>Tea &amp; cake<br/>at four</p>"]
def other_client_patch(emulator, path, body):
    """A PATCH by another API client: a change made outside this mount."""
    import urllib.request
    from helpers import TOKEN
    req = urllib.request.Request(emulator.url + path, method="PATCH",
                                 data=json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + TOKEN,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def rename_save(path, text):
    """What sed -i and rsync do: a scratch file beside the target, renamed
    over it."""
    scratch = os.path.join(os.path.dirname(path),
                           "." + os.path.basename(path) + ".Xy12Ab")
    write(scratch, text)
    os.rename(scratch, path)


def contact_with_conversation(emulator, skip=0):
    data = emulator.data()
    ids = []
    for v in data["conversations"]:
        if v["contactId"] not in ids and any(
                c["id"] == v["contactId"] for c in data["contacts"]):
            ids.append(v["contactId"])
    return ids[skip]


@pytest.mark.parametrize("how", ["one descriptor", "read then O_TRUNC",
                                 "rename from a scratch file"])
def test_contact_edit_keeps_a_concurrent_change(mount, emulator, how):
    """DESIGN §4: a field the writer left alone is not sent back, even when
    Drift changed it after the writer read the file (a lost update)."""
    c = contact_with_conversation(emulator)
    p = mount.p("contacts", str(c), "contact.json")
    # The writer reads through a read-only descriptor or a read-write one.
    f = open(p, "r" if how == "read then O_TRUNC" else "r+")
    obj = json.loads(f.read())
    if how != "one descriptor":
        f.close()
    # Drift changes the phone; the cache learns it before the writer saves.
    emulator.mutate(op="update_contact", id=c,
                    attributes={"phone": "555-CONCURRENT"})
    mount.ctl("sync contacts/%d" % c)
    obj["attributes"]["name"] = "Writer Name"
    text = json.dumps(obj, indent=2)
    seq = last_seq(emulator)
    if how == "one descriptor":
        f.seek(0)
        f.truncate()
        f.write(text)
        f.close()
    elif how == "read then O_TRUNC":
        write(p, text)
    else:
        rename_save(p, text)
    patches = api_calls(emulator, seq, "PATCH")
    assert [json.loads(x["body"]) for x in patches] == [
        {"attributes": {"name": "Writer Name"}}]
    assert api_calls(emulator, seq, "DELETE") == []
    attrs = next(x for x in emulator.data()["contacts"] if x["id"] == c)["attributes"]
    assert attrs["phone"] == "555-CONCURRENT" and attrs["name"] == "Writer Name"
    # The file shows both changes once the write has landed.
    attrs = mount.json("contacts", str(c), "contact.json")["attributes"]
    assert attrs["phone"] == "555-CONCURRENT" and attrs["name"] == "Writer Name"


def test_tags_edit_keeps_a_concurrent_tag(mount, emulator):
    data = emulator.data()
    convs = {v["contactId"] for v in data["conversations"]}
    c = next(x for x in data["contacts"] if len(x["attributes"].get("tags") or []) >= 2
             and x["id"] in convs)
    p = mount.p("contacts", str(c["id"]), "tags")
    lines = open(p).read().splitlines()
    # Drift adds a tag after the writer read the file.
    tags = list(c["attributes"]["tags"])
    tags.append({"name": "added-in-drift"} if isinstance(tags[0], dict)
                else "added-in-drift")
    emulator.mutate(op="update_contact", id=c["id"], attributes={"tags": tags})
    mount.ctl("sync contacts/%d" % c["id"])
    seq = last_seq(emulator)
    write(p, "\n".join(lines[1:] + ["writer-tag"]) + "\n")
    calls = api_calls(emulator, seq)
    assert [(x["method"], json.loads(x["body"]) if x["method"] == "POST" else None)
            for x in calls if x["method"] != "GET"] == [
        ("POST", [{"name": "writer-tag"}]), ("DELETE", None)]
    dels = [x for x in calls if x["method"] == "DELETE"]
    assert "added-in-drift" not in dels[0]["path"]
    now = open(p).read().splitlines()
    assert "added-in-drift" in now and "writer-tag" in now and lines[0] not in now


@pytest.mark.parametrize("how", ["read then O_TRUNC", "rename from a scratch file"])
def test_account_edit_keeps_a_concurrent_change(mount, emulator, how):
    data = emulator.data()
    a = next(x for x in data["accounts"] if not x["deleted"])
    owner = next(x["id"] for x in data["users"]
                 if not x.get("bot") and x["id"] != a["ownerId"])
    name = a["accountId"].replace("%", "%25").replace("/", "%2F") + ".json"
    p = mount.p("accounts", name)
    obj = json.loads(open(p).read())
    # Another client renames the account and gives it a new owner.
    other_client_patch(emulator, "/accounts/update",
                       {"accountId": a["accountId"], "ownerId": owner,
                        "name": "Renamed Elsewhere"})
    mount.ctl("sync accounts")
    obj["targeted"] = not obj["targeted"]
    seq = last_seq(emulator)
    if how == "read then O_TRUNC":
        write(p, json.dumps(obj))
    else:
        rename_save(p, json.dumps(obj))
    patches = api_calls(emulator, seq, "PATCH")
    # The owner the API requires is the current one, not the one read.
    assert [json.loads(x["body"]) for x in patches] == [
        {"targeted": obj["targeted"], "accountId": a["accountId"], "ownerId": owner}]
    acc = next(x for x in emulator.data()["accounts"]
               if x["accountId"] == a["accountId"])
    assert acc["name"] == "Renamed Elsewhere" and acc["ownerId"] == owner
    assert acc["targeted"] == obj["targeted"]


def test_vim_save_keeps_a_change_made_while_it_edits(mount, emulator, tmp_path):
    """vim reads the file, Drift changes it while the buffer is open, and
    :wq sends only vim's change."""
    import shutil
    if not shutil.which("vim"):
        pytest.skip("SKIP: vim is not installed")
    c = contact_with_conversation(emulator, 1)
    p = mount.p("contacts", str(c), "contact.json")
    meanwhile = tmp_path / "meanwhile.sh"
    meanwhile.write_text(
        "set -e\n"
        "curl -sf -X POST -H 'Content-Type: application/json' -d '%s' %s/_admin/mutate"
        " >/dev/null\n"
        "printf 'sync contacts/%d\\n' > '%s'\n" % (
            json.dumps({"op": "update_contact", "id": c,
                        "attributes": {"phone": "555-CONCURRENT"}}),
            emulator.url, c, mount.p(".driftfs", "ctl")))
    seq = last_seq(emulator)
    r = subprocess.run(["vim", "-es", "-u", "NONE", "-i", "NONE",
                        "-c", "silent !sh %s" % meanwhile,
                        "-c", r'%s/"name": "[^"]*"/"name": "Vim Name"/',
                        "-c", "wq", p], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    patches = [json.loads(x["body"]) for x in api_calls(emulator, seq, "PATCH")]
    assert patches == [{"attributes": {"name": "Vim Name"}}]
    attrs = next(x for x in emulator.data()["contacts"] if x["id"] == c)["attributes"]
    assert attrs["phone"] == "555-CONCURRENT" and attrs["name"] == "Vim Name"


def contact_with_tags(emulator, n=2):
    data = emulator.data()
    convs = {v["contactId"] for v in data["conversations"]}
    return next(x for x in data["contacts"]
                if len(x["attributes"].get("tags") or []) >= n and x["id"] in convs)


def tag_names(contact):
    return [t["name"] if isinstance(t, dict) else t
            for t in contact["attributes"].get("tags") or []]


def test_two_appends_to_tags_while_queued_keep_both_tags(mount, emulator):
    """`>>` starts from the bytes it finds in the file, so that is what it
    changed: the second of two appends queued behind a 503 sent add e and a
    DELETE of the tag the first one added (it was compared with the first
    one's content, which the cache did not show yet)."""
    from helpers import wait_for
    c = contact_with_tags(emulator)
    p = mount.p("contacts", str(c["id"]), "tags")
    before = open(p).read().splitlines()
    seq = last_seq(emulator)
    emulator.add_fault(kind="status", status=503, count=1000, method="POST",
                       path="/contacts/%d/tags" % c["id"])
    write(p, "appended-d\n", mode="a")
    write(p, "appended-e\n", mode="a")
    emulator.clear_faults()
    wait_for(lambda: not os.listdir(mount.p(".driftfs", "outbox")), 30, "the outbox")
    assert api_calls(emulator, seq, "DELETE") == []
    server = next(x for x in emulator.data()["contacts"] if x["id"] == c["id"])
    assert sorted(tag_names(server)) == sorted(before + ["appended-d", "appended-e"])


def read_elsewhere(path):
    """A read by another process (`cat` in another shell)."""
    return subprocess.run(["cat", path], check=True,
                          stdout=subprocess.PIPE).stdout.decode()


def read_every_writable_file(mount, but):
    """A traversal: the first read of each contact.json and tags reaches
    driftfs."""
    n = 0
    for d in os.listdir(mount.p("contacts")):
        if d == str(but) or not d.isdigit():
            continue
        for name in ("contact.json", "tags"):
            try:
                open(mount.p("contacts", d, name)).read()
                n += 1
            except FileNotFoundError:
                pass
    return n


@pytest.mark.parametrize("meanwhile", ["another reader", "a traversal"])
@pytest.mark.parametrize("how", ["read then O_TRUNC", "rename from a scratch file",
                                 "O_WRONLY cut to 0"])
def test_contact_edit_uses_the_version_its_writer_read(mount, emulator, how,
                                                       meanwhile):
    """The writer read v0; Drift changed the phone and the file was read
    again (v1) by `cat` in another shell, or every other contact was read
    after it. The save sends only the writer's change: it was compared with
    the last version read (v1: the old phone went back), or with the cache
    once 32 other files had been read. The version its own process read is
    the one."""
    c = contact_with_conversation(emulator, 2)
    p = mount.p("contacts", str(c), "contact.json")
    obj = json.loads(open(p).read())
    emulator.mutate(op="update_contact", id=c,
                    attributes={"phone": "555-CONCURRENT"})
    mount.ctl("sync contacts/%d" % c)
    if meanwhile == "another reader":
        assert json.loads(read_elsewhere(p))["attributes"]["phone"] == "555-CONCURRENT"
    else:
        assert read_every_writable_file(mount, c) > 32
    obj["attributes"]["name"] = "Writer Name"
    seq = last_seq(emulator)
    if how == "read then O_TRUNC":
        write(p, json.dumps(obj, indent=2))
    elif how == "O_WRONLY cut to 0":
        # dd, rsync --inplace: no O_TRUNC, the file is cut before writing.
        fd = os.open(p, os.O_WRONLY)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(obj, indent=2).encode())
        finally:
            os.close(fd)
    else:
        rename_save(p, json.dumps(obj, indent=2))
    patches = api_calls(emulator, seq, "PATCH")
    assert [json.loads(x["body"]) for x in patches] == [
        {"attributes": {"name": "Writer Name"}}]
    attrs = next(x for x in emulator.data()["contacts"] if x["id"] == c)["attributes"]
    assert attrs["phone"] == "555-CONCURRENT" and attrs["name"] == "Writer Name"


def test_a_save_that_undoes_the_last_one_is_sent(mount, emulator):
    """Versions are kept per process, and a commit the API took is its
    process's next version: a save that puts back what the writer's last
    save changed is a change, sent (compared with the closest version any
    reader took, the original, it looked like none and was dropped). Also
    from another process that never read the file: content equal to a kept
    older version whole is a restore, compared with the cache."""
    c = contact_with_conversation(emulator, 3)
    p = mount.p("contacts", str(c), "contact.json")
    v0 = open(p).read()
    obj = json.loads(v0)
    old_name = obj["attributes"].get("name")
    obj["attributes"]["name"] = "Undo Me"
    seq = last_seq(emulator)
    write(p, json.dumps(obj, indent=2))         # the same process
    write(p, v0)                                # its undo
    sent = [json.loads(x["body"]) for x in api_calls(emulator, seq, "PATCH")]
    assert sent == [{"attributes": {"name": "Undo Me"}},
                    {"attributes": {"name": old_name}}]
    # The same from two shells that never read it.
    seq = last_seq(emulator)
    for text in (json.dumps(obj, indent=2), v0):
        subprocess.run(["sh", "-c", 'cat > "$1"', "sh", p], input=text.encode(),
                       check=True)
    sent = [json.loads(x["body"]) for x in api_calls(emulator, seq, "PATCH")]
    assert sent == [{"attributes": {"name": "Undo Me"}},
                    {"attributes": {"name": old_name}}]
    server = next(x for x in emulator.data()["contacts"] if x["id"] == c)
    assert server["attributes"].get("name") == old_name


def test_an_undo_of_a_queued_save_is_sent(mount, emulator):
    """A save that met a 503 waits in the outbox; the writer's next save
    is its change on top of it: an undo is sent after it (compared with
    what the writer had read, it looked like no change, and the queued
    save landed last)."""
    from helpers import wait_for
    c = contact_with_conversation(emulator, 5)
    p = mount.p("contacts", str(c), "contact.json")
    v0 = open(p).read()
    obj = json.loads(v0)
    old_name = obj["attributes"].get("name")
    obj["attributes"]["name"] = "Queued Name"
    seq = last_seq(emulator)
    emulator.add_fault(kind="status", status=503, count=1000, method="PATCH",
                       path="^/contacts/%d$" % c)
    write(p, json.dumps(obj, indent=2))     # queued
    write(p, v0)                            # the undo, queued behind it
    emulator.clear_faults()
    wait_for(lambda: not os.listdir(mount.p(".driftfs", "outbox")), 60,
             "the outbox")
    sent = [json.loads(x["body"]) for x in api_calls(emulator, seq, "PATCH")
            if x["status"] == 200]
    assert sent == [{"attributes": {"name": "Queued Name"}},
                    {"attributes": {"name": old_name}}]
    server = next(x for x in emulator.data()["contacts"] if x["id"] == c)
    assert server["attributes"].get("name") == old_name


def test_versions_are_kept_per_process_not_per_thread(mount, emulator):
    """An editor may read on one thread and save on another: the versions
    are its process's. One thread reads, another saves a change, the first
    saves the original back: that undo is sent (keyed by thread, the first
    thread's version was the original, and the undo looked like none)."""
    import threading
    c = contact_with_conversation(emulator, 4)
    p = mount.p("contacts", str(c), "contact.json")
    box = {}
    read, changed = threading.Event(), threading.Event()

    def reader():
        box["v0"] = open(p).read()
        read.set()
        changed.wait(30)
        write(p, box["v0"])         # the undo, from the thread that read
    t = threading.Thread(target=reader)
    t.start()
    read.wait(30)
    obj = json.loads(box["v0"])
    old_name = obj["attributes"].get("name")
    obj["attributes"]["name"] = "Other Thread"
    seq = last_seq(emulator)
    write(p, json.dumps(obj, indent=2))     # another thread's save
    changed.set()
    t.join()
    sent = [json.loads(x["body"]) for x in api_calls(emulator, seq, "PATCH")]
    assert sent == [{"attributes": {"name": "Other Thread"}},
                    {"attributes": {"name": old_name}}]


@pytest.mark.parametrize("meanwhile", ["nothing", "another reader"])
@pytest.mark.parametrize("how", ["read then O_TRUNC", "rename from a scratch file"])
def test_user_edit_uses_the_version_its_writer_read(mount, emulator, how,
                                                    meanwhile):
    """A user, whose updatedAt moves on: the writer read v0, Drift changed
    the phone, the cache (and maybe another reader) took v1. Compared with
    the cache at close(), or with the version another reader took, the
    save was refused (EINVAL) or sent the old phone back."""
    u = [x for x in emulator.data()["users"] if not x.get("bot")][1]
    p = mount.p("users", "%d.json" % u["id"])
    obj = json.loads(open(p).read())
    emulator.mutate(op="update_user", id=u["id"], fields={"phone": "555-CONCURRENT"})
    mount.ctl("sync users/%d" % u["id"])
    if meanwhile == "another reader":
        assert json.loads(read_elsewhere(p))["phone"] == "555-CONCURRENT"
    obj["alias"] = "Writer Alias"
    seq = last_seq(emulator)
    if how == "read then O_TRUNC":
        write(p, json.dumps(obj))
    else:
        rename_save(p, json.dumps(obj))
    patches = api_calls(emulator, seq, "PATCH")
    assert [json.loads(x["body"]) for x in patches] == [{"alias": "Writer Alias"}]
    user = next(x for x in emulator.data()["users"] if x["id"] == u["id"])
    assert user["phone"] == "555-CONCURRENT" and user["alias"] == "Writer Alias"


def test_tags_edit_uses_the_version_its_writer_read(mount, emulator):
    """Tags carry no version marker: the version closest to what is
    written is the writer's."""
    c = contact_with_tags(emulator)
    p = mount.p("contacts", str(c["id"]), "tags")
    lines = open(p).read().splitlines()
    tags = list(c["attributes"]["tags"])
    tags.append({"name": "added-in-drift"} if isinstance(tags[0], dict)
                else "added-in-drift")
    emulator.mutate(op="update_contact", id=c["id"], attributes={"tags": tags})
    mount.ctl("sync contacts/%d" % c["id"])
    assert "added-in-drift" in read_elsewhere(p).splitlines()
    seq = last_seq(emulator)
    rename_save(p, "\n".join(lines + ["writer-tag"]) + "\n")
    assert api_calls(emulator, seq, "DELETE") == []
    posts = api_calls(emulator, seq, "POST")
    assert [json.loads(x["body"]) for x in posts] == [[{"name": "writer-tag"}]]
    server = next(x for x in emulator.data()["contacts"] if x["id"] == c["id"])
    assert sorted(tag_names(server)) == sorted(lines + ["added-in-drift", "writer-tag"])


@pytest.mark.parametrize("how", ["O_TRUNC", "one descriptor"])
def test_refused_queued_write_is_not_the_next_ones_base(mount, emulator, how):
    """A write queued behind a 503 and then refused (400) never reached the
    API: a later write of fixed content, made without reading the file
    again, sends all of its changes, not only those since the refused one."""
    from helpers import wait_for
    c = contact_with_conversation(emulator, 3)
    p = mount.p("contacts", str(c), "contact.json")
    f = open(p, "r+") if how == "one descriptor" else None
    obj = json.loads(f.read() if f else open(p).read())
    seq = last_seq(emulator)
    emulator.add_fault(kind="status", status=503, count=1000, method="PATCH",
                       path="/contacts/%d$" % c)
    obj["attributes"]["name"] = "Fixed Name"
    obj["attributes"]["email"] = "not an email"
    text = json.dumps(obj, indent=2)
    if f:
        f.seek(0)
        f.truncate()
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    else:
        write(p, text)
    assert len(os.listdir(mount.p(".driftfs", "outbox"))) == 1
    emulator.clear_faults()
    emulator.add_fault(kind="status", status=400, count=1, method="PATCH",
                       path="/contacts/%d$" % c)
    wait_for(lambda: not os.listdir(mount.p(".driftfs", "outbox")), 30, "the outbox")
    assert "HTTP 400" in mount.read(".driftfs", "errors", mode="r")
    obj["attributes"]["email"] = "fixed@example.com"
    text = json.dumps(obj, indent=2)
    if f:
        f.seek(0)
        f.truncate()
        f.write(text)
        f.close()
    else:
        write(p, text)
    sent = [json.loads(x["body"]) for x in api_calls(emulator, seq, "PATCH")
            if x["status"] == 200]
    assert sent == [{"attributes": {"name": "Fixed Name",
                                    "email": "fixed@example.com"}}]
    attrs = next(x for x in emulator.data()["contacts"] if x["id"] == c)["attributes"]
    assert attrs["name"] == "Fixed Name" and attrs["email"] == "fixed@example.com"

def messages_of(emulator, cid):
    return emulator.data()["messages"][str(cid)]


def wait_outbox_empty(mount, timeout=60):
    from helpers import wait_for
    wait_for(lambda: not os.listdir(mount.p(".driftfs", "outbox")), timeout,
             "the outbox")


@pytest.mark.parametrize("case", ["our earlier reply", "our note", "the contact's message"])
def test_landed_check_takes_no_other_message_for_this_one(mount, emulator, case):
    """A reply whose POST met a 5xx without landing was taken as delivered
    when any message in the conversation had its text: our own earlier
    reply, a note, the contact's words. It was never sent. Only a newer
    message of the same type by the author of our posts counts."""
    cid = emulator.data()["conversations"][13]["id"]
    text = {"our earlier reply": "Yes, agreed", "our note": "done and dusted",
            "the contact's message": "ok then"}[case]
    if case == "our earlier reply":
        write(mount.p("conversations", str(cid), "reply"), text + "\n")
    elif case == "our note":
        write(mount.p("conversations", str(cid), "note"), text + "\n")
    else:
        emulator.mutate(op="add_message", conversationId=cid,
                        authorType="contact", body="<p>%s</p>" % text)
    before = [m for m in messages_of(emulator, cid) if m["body"] in (text, "<p>%s</p>" % text)]
    assert len(before) == 1
    seq = last_seq(emulator)
    # 502, and the backend did not store it.
    emulator.add_fault(kind="status", status=502, method="POST",
                       path=r"^/conversations/\d+/messages$")
    write(mount.p("conversations", str(cid), "reply"), text + "\n")
    wait_outbox_empty(mount)
    replies = [m for m in messages_of(emulator, cid)
               if m["body"] == text and m["type"] == "chat" and m["author"]["type"] == "user"]
    assert len(replies) == (2 if case == "our earlier reply" else 1)
    assert len(api_calls(emulator, seq, "POST", r"/conversations/%d/messages$" % cid)) == 2


def test_message_edit_of_markup_only_survives_a_5xx(mount, emulator):
    """An edit that changes only markup (an href) reads as the same text:
    after a 502 that did not land, the text check took it as landed, and
    the edit was lost. Edits are resent without a check."""
    data = emulator.data()
    cid = data["conversations"][14]["id"]
    emulator.mutate(op="add_message", conversationId=cid, authorType="user",
                    body='<p>See <a href="https://old.example/">the docs</a></p>')
    mount.ctl("sync")
    mount.wait_synced(2)
    msg = messages_of(emulator, cid)[-1]
    p = mount.p("conversations", str(cid), "messages", "%d.json" % msg["id"])
    obj = json.loads(open(p).read())
    new_body = '<p>See <a href="https://new.example/">the docs</a></p>'
    obj["body"] = new_body
    seq = last_seq(emulator)
    emulator.add_fault(kind="status", status=502, method="POST",
                       path=r"^/conversations/\d+/messages$")
    write(p, json.dumps(obj))
    wait_outbox_empty(mount)
    assert [m["body"] for m in messages_of(emulator, cid) if m["id"] == msg["id"]] == [new_body]
    assert len(api_calls(emulator, seq, "POST", r"/conversations/%d/messages$" % cid)) >= 2


def test_message_delete_that_landed_is_done_on_its_404(mount, emulator):
    """A delete whose answer was lost is sent again; the 404 it then meets
    means the first one did it: done, not refused."""
    data = emulator.data()
    cid = next(c["id"] for c in data["conversations"][15:]
               if len(data["messages"][str(c["id"])]) > 1)
    msg = messages_of(emulator, cid)[0]
    seq = last_seq(emulator)
    emulator.add_fault(kind="status", status=504, process_first=True, count=1,
                       method="POST", path=r"^/conversations/\d+/messages$")
    os.unlink(mount.p("conversations", str(cid), "messages", "%d.json" % msg["id"]))
    wait_outbox_empty(mount)
    assert msg["id"] not in [m["id"] for m in messages_of(emulator, cid)]
    statuses = [r["status"] for r in api_calls(emulator, seq, "POST",
                                               r"/conversations/%d/messages$" % cid)]
    assert statuses[0] == 504 and statuses[-1] == 404
    assert "refused" not in mount.read(".driftfs", "errors", mode="r")


@pytest.mark.parametrize("status", [404, 403])
def test_landed_check_that_cannot_succeed_drops_the_row(mount, emulator, status):
    """A check that keeps failing blocked its conversation's writes forever.
    A 404 (the conversation is gone) drops the row: it cannot land; a 403
    is reported as refused. Both say so in .driftfs/errors."""
    cid = emulator.data()["conversations"][16]["id"]
    other = emulator.data()["conversations"][17]["id"]
    emulator.add_fault(kind="status", status=502, method="POST",
                       path=r"^/conversations/%d/messages$" % cid)
    emulator.add_fault(kind="status", status=status, count=10000, method="GET",
                       path=r"^/conversations/%d/messages$" % cid)
    write(mount.p("conversations", str(cid), "reply"), "lost in the void\n")
    assert len(outbox_rows(mount)) == 1
    wait_outbox_empty(mount)
    errors = mount.read(".driftfs", "errors", mode="r")
    line = [x for x in errors.splitlines() if "/conversations/%d/messages" % cid in x
            and ("dropped" in x or "refused" in x)]
    assert line and ("gone" in line[-1] if status == 404 else "refused" in line[-1])
    assert not [m for m in messages_of(emulator, cid) if "lost in the void" in m["body"]]
    # The conversation's next write is not blocked.
    write(mount.p("conversations", str(other), "reply"), "after it\n")
    assert [m for m in messages_of(emulator, other) if m["body"] == "after it"]


def outbox_db(mount):
    import glob
    found = glob.glob(os.path.join(mount.cache, "**", "outbox.db"), recursive=True)
    assert len(found) == 1, found
    return found[0]


def test_legacy_outbox_rows_are_named_and_block_only_their_object(mount, emulator):
    """A row queued by a version before object keys has object '': it was
    ordered against every row, so one that could not go blocked the whole
    outbox. At open, its key is named from its kind and target (and the
    outbox.db gains the new columns)."""
    import sqlite3
    cid = emulator.data()["conversations"][18]["id"]
    other = emulator.data()["conversations"][19]["id"]
    mount.unmount()
    db = sqlite3.connect(outbox_db(mount))
    # The outbox.db of the version before: no after_* columns.
    db.executescript(
        "DROP TABLE outbox; CREATE TABLE outbox(seq INTEGER PRIMARY KEY"
        " AUTOINCREMENT, created INTEGER NOT NULL, path TEXT NOT NULL,"
        " kind TEXT NOT NULL, method TEXT NOT NULL, api_path TEXT NOT NULL,"
        " body BLOB, target INTEGER NOT NULL DEFAULT 0,"
        " state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
        " next_try INTEGER NOT NULL DEFAULT 0, last_error TEXT,"
        " object TEXT NOT NULL DEFAULT '');")
    # Not due for an hour: it waits, and so did every row behind it.
    db.execute("INSERT INTO outbox(created, path, kind, method, api_path, body,"
               " target, state, next_try) VALUES(?,?,?,?,?,?,?,?,?)",
               (1700000000000, "/conversations/%d/reply" % cid, "message", "POST",
                "/conversations/%d/messages" % cid,
                json.dumps({"type": "chat", "body": "legacy"}), cid, "pending",
                (int(__import__("time").time()) + 3600) * 1000))
    db.commit()
    db.close()
    mount.start()
    seq = last_seq(emulator)
    write(mount.p("conversations", str(other), "reply"), "not behind it\n")
    assert len(api_calls(emulator, seq, "POST", r"/conversations/%d/messages$" % other)) == 1
    rows = outbox_rows(mount)
    assert [r["object"] for r in rows] == ["conversation:%d" % cid]
    # A write to the legacy row's own conversation still waits behind it.
    write(mount.p("conversations", str(cid), "reply"), "behind it\n")
    assert not api_calls(emulator, seq, "POST", r"/conversations/%d/messages$" % cid)
    from helpers import wait_for
    wait_for(lambda: len(outbox_rows(mount)) == 2, 10, "two rows listed")


def test_landed_check_waits_for_a_slow_backend(mounts, emulator, tmp_path):
    """A gateway's 504 can come while the backend is still writing. The
    first check came 1 s later, missed the message still being stored, and
    sent it again: two copies. The check waits a grace period (20 s;
    DRIFTFS_TEST_LANDED_GRACE_MS here) first."""
    m = mounts(emulator.url, str(tmp_path / "m"),
               env={"DRIFTFS_TEST_LANDED_GRACE_MS": "6000"})
    cid = emulator.data()["conversations"][20]["id"]
    seq = last_seq(emulator)
    emulator.add_fault(kind="status", status=504, process_after=3, method="POST",
                       path=r"^/conversations/\d+/messages$")
    write(m.p("conversations", str(cid), "reply"), "slowly stored\n")
    wait_outbox_empty(m)
    assert [x["body"] for x in messages_of(emulator, cid)].count("slowly stored") == 1
    assert len(api_calls(emulator, seq, "POST", r"/conversations/%d/messages$" % cid)) == 1


def test_create_found_landed_names_the_created_contact(mount, emulator):
    """A new contact whose POST met a 504 after it was stored is found by
    the check; contacts/new then shows its id and the contact is in the
    tree, as after a success (the id stayed stale before)."""
    email = "found.later@example.com"
    emulator.add_fault(kind="status", status=504, process_first=True, method="POST",
                       path=r"^/contacts$")
    write(mount.p("contacts", "new"), json.dumps({"email": email, "name": "Found Later"}))
    wait_outbox_empty(mount)
    made = [c for c in emulator.data()["contacts"] if c["attributes"].get("email") == email]
    assert len(made) == 1
    assert mount.read("contacts", "new", mode="r") == "%d\n" % made[0]["id"]
    assert str(made[0]["id"]) in os.listdir(mount.p("contacts"))


def test_a_refused_token_keeps_the_queued_writes(mount, emulator):
    """The token refused (401) for good while writes wait: each row in turn
    was "refused" and dropped until the outbox was empty. A 401 refuses the
    login, not the write: the rows stay, sending pauses, it is said once in
    .driftfs/errors, and they go out in order once a token is taken."""
    from helpers import wait_for
    cid = emulator.data()["conversations"][18]["id"]
    texts = ["waits for a login %d" % i for i in range(3)]
    emulator.add_fault(kind="status", status=503, count=1000, method="POST",
                       path=r"^/conversations/%d/messages$" % cid)
    for t in texts:
        write(mount.p("conversations", str(cid), "reply"), t + "\n")
    assert len(outbox_rows(mount)) == 3
    seq = last_seq(emulator)
    emulator.clear_faults()
    emulator.add_fault(kind="status", status=401, count=3, method="POST",
                       path=r"^/conversations/%d/messages$" % cid)
    wait_for(lambda: len([r for r in api_calls(emulator, seq, "POST")
                          if r["status"] == 401]) >= 2, 30, "two refusals")
    assert len(outbox_rows(mount)) == 3
    wait_outbox_empty(mount)
    bodies = [m["body"] for m in messages_of(emulator, cid)]
    assert [b for b in bodies if b in texts] == texts
    errors = mount.read(".driftfs", "errors", mode="r")
    assert "run driftctl login" in errors
    assert len([x for x in errors.splitlines()
                if "the access token was refused: 3 writes wait" in x]) == 1
    assert not [x for x in errors.splitlines()
                if "refused" in x and "/conversations/%d/messages" % cid in x
                and "HTTP 401" in x and "delivery" in x]


def test_identical_queued_replies_are_each_sent(mount, emulator):
    """Three identical replies queued while the API is down: the first two
    land; the third's POST meets a 504 without landing. Its check took the
    first one's message for its own (only the last one landed was ruled
    out), and it was never sent."""
    cid = emulator.data()["conversations"][19]["id"]
    path = r"^/conversations/%d/messages$" % cid
    before = len([m for m in messages_of(emulator, cid) if m["body"] == "ok"])
    emulator.add_fault(kind="status", status=503, count=1000, method="POST",
                       path=path)
    for _ in range(3):
        write(mount.p("conversations", str(cid), "reply"), "ok\n")
    assert len(outbox_rows(mount)) == 3
    emulator.clear_faults()
    emulator.add_fault(kind="status", status=504, skip=2, count=1,
                       method="POST", path=path)
    wait_outbox_empty(mount)
    oks = [m for m in messages_of(emulator, cid) if m["body"] == "ok"]
    assert len(oks) == before + 3


def test_an_edit_resent_after_a_5xx_waits_for_a_slow_backend(mounts, emulator,
                                                             tmp_path):
    """Edits are idempotent, and were retried within the call half a
    second after a 504: while the backend was still storing the first
    copy. The retry landed, the next edit landed, then the late first copy
    landed and undid the next edit. The resend waits the grace."""
    m = mounts(emulator.url, str(tmp_path / "m"),
               env={"DRIFTFS_TEST_LANDED_GRACE_MS": "4000"})
    c = emulator.data()["conversations"][21]["contactId"]
    p = m.p("contacts", str(c), "contact.json")
    obj = json.loads(open(p).read())
    seq = last_seq(emulator)
    emulator.add_fault(kind="status", status=504, process_after=2, count=1,
                       method="PATCH", path=r"^/contacts/%d$" % c)
    obj["attributes"]["name"] = "First Edit"
    write(p, json.dumps(obj))
    obj["attributes"]["name"] = "Second Edit"
    write(p, json.dumps(obj))
    wait_outbox_empty(m)
    patches = api_calls(emulator, seq, "PATCH", r"^/contacts/%d$" % c)
    assert [json.loads(x["body"])["attributes"]["name"] for x in patches] == \
        ["First Edit", "First Edit", "Second Edit"]
    # The resend came after the late copy had landed (2 s after the 504).
    assert patches[1]["time"] - patches[0]["time"] >= 2.5
    attrs = next(x for x in emulator.data()["contacts"] if x["id"] == c)["attributes"]
    assert attrs["name"] == "Second Edit"


def test_a_post_cut_short_by_a_crash_is_checked_after_the_grace(mounts, emulator,
                                                                tmp_path):
    """The daemon dies while a reply's POST is with a slow backend, which
    stores it later. At the restart the row ("sending") was checked at
    once, before the backend was done, and the reply was sent again: two
    copies. The grace is counted from before the request left."""
    import signal
    from helpers import SLOW
    # The backend stores the resend `stall` s after it arrived; the check
    # must wait the grace from before it left, so stall < grace, and the
    # restart must come well within the stall (twice both under valgrind).
    grace, stall = (6, 3) if SLOW == 1 else (12, 6)
    m = mounts(emulator.url, str(tmp_path / "m"),
               env={"DRIFTFS_TEST_LANDED_GRACE_MS": str(grace * 1000)})
    cid = emulator.data()["conversations"][22]["id"]
    path = r"^/conversations/%d/messages$" % cid
    emulator.add_fault(kind="status", status=503, count=1000, method="POST",
                       path=path)
    write(m.p("conversations", str(cid), "reply"), "cut short by a crash\n")
    emulator.clear_faults()
    seq = last_seq(emulator)
    # The worker's resend: stalled in the backend, then stored.
    emulator.add_fault(kind="stall", seconds=stall, method="POST", path=path)
    from helpers import wait_for
    wait_for(lambda: api_calls(emulator, seq, "GET", path), 30, "the check")
    wait_for(lambda: [x for x in emulator.admin("GET", "faults")["pending"]
                      if x["kind"] == "stall"] == [], 30, "the resend")
    m.proc.send_signal(signal.SIGKILL)
    m.proc.wait()
    subprocess.run(["fusermount3", "-uz", m.path], capture_output=True)
    m.errlog.close()
    m.proc = None
    m.start()
    wait_outbox_empty(m)
    # The stalled copy lands too, however the restart went.
    wait_for(lambda: [x for x in api_calls(emulator, seq, "POST", path)
                      if x["fault"]], 30, "the stalled copy")
    assert len(api_calls(emulator, seq, "POST", path)) == 1
    texts = [x["body"] for x in messages_of(emulator, cid)]
    assert texts.count("cut short by a crash") == 1


def test_a_landed_check_refused_a_token_keeps_the_row(mount, emulator):
    """A check met by a 401 dropped the row as "refused", as a 403 does:
    the token was refused, not the check. The row stays and is sent once
    a token is taken."""
    cid = emulator.data()["conversations"][23]["id"]
    path = r"^/conversations/%d/messages$" % cid
    emulator.add_fault(kind="status", status=502, method="POST", path=path)
    emulator.add_fault(kind="status", status=401, count=2, method="GET",
                       path=path)
    write(mount.p("conversations", str(cid), "reply"), "checked with a bad token\n")
    wait_outbox_empty(mount)
    assert [m for m in messages_of(emulator, cid)
            if m["body"] == "checked with a bad token"]
    assert "the access token was refused" in mount.read(".driftfs", "errors",
                                                        mode="r")
