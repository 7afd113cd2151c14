# SPDX-License-Identifier: MIT
"""API text cannot drive the user's terminal: escape sequences in a message's
type and body, a user's name and an API error message are gone, whole, from
transcript.txt, .driftfs/errors and the daemon's log, and JSON files escape
them (the value survives); an error text is redacted before it is cut."""
import errno
import json
import os
import re
import urllib.request

import pytest

from helpers import NASTY, TOKEN, Emulator, assert_inert

SECRET = "tok-7c1e55d0-SECRET-b9a2f4"


def api_get(emu, path):
    req = urllib.request.Request(emu.url + path,
                                 headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def sync(m, passes):
    try:
        m.ctl("sync")       # waits for the pass, and fails with it
    except OSError:
        pass
    m.wait_synced(passes=passes)


def test_escapes_never_reach_files_or_log(emulator, mounts, tmp_path):
    emu = emulator
    m = mounts(emu.url, str(tmp_path))
    data = emu.data()
    user = data["users"][0]
    emu.mutate(op="update_user", id=user["id"],
               fields={"name": "Eve" + NASTY + " Agent"})
    conv = emu.mutate(op="new_conversation",
                      contactId=data["conversations"][0]["contactId"])
    cid = conv["id"]
    msg = emu.mutate(op="add_message", conversationId=cid, authorType="user",
                     authorId=user["id"],
                     body="<p>before" + NASTY + " after</p>")
    # Drift validates a message's type; the test does not trust it to:
    # the sync's page of messages comes back with the type poisoned.
    page = api_get(emu, "/conversations/%d/messages" % cid)
    for mm in page["data"]["messages"]:
        if mm["id"] == msg["id"]:
            mm["type"] = "chat" + NASTY
    emu.add_fault(kind="body", status=200, method="GET",
                  path="^/conversations/%d/messages" % cid,
                  body=json.dumps(page))
    sync(m, 2)

    transcript = m.read("conversations", str(cid), "transcript.txt")
    assert_inert("transcript.txt", transcript)
    text = transcript.decode()
    assert "before after" in text
    # The name and type are there, without their sequences.
    assert "] Eve Agent (agent, chat):\n" in text or \
        "] Eve Agent (bot, chat):\n" in text, text

    # JSON files show the values escaped (\u001b, \u009b: inert text),
    # and they parse back unchanged.
    for parts in (("users", "%d.json" % user["id"]),
                  ("conversations", str(cid), "messages",
                   "%d.json" % msg["id"])):
        raw = m.read(*parts)
        assert_inert("/".join(parts), raw, remnants=())
        assert "\\u009b" in raw.decode()
    assert m.json("users", "%d.json" % user["id"])["name"] == \
        "Eve" + NASTY + " Agent"
    assert m.json("conversations", str(cid), "messages",
                  "%d.json" % msg["id"])["type"] == "chat" + NASTY

    # An API error message with escapes: .driftfs/errors and the log.
    emu.add_fault(kind="body", status=422, body=json.dumps(
        {"error": {"type": "validation_error",
                   "message": "refused" + NASTY + " here"}}))
    sync(m, 3)
    errors = m.read(".driftfs", "errors").decode()
    assert "HTTP 422: validation_error: refused here" in errors, errors
    assert_inert(".driftfs/errors", errors)
    log = m.logtext()
    assert "validation_error: refused here" in log
    assert_inert("the daemon log", log)


@pytest.fixture
def secret_emulator(tmp_path):
    emu = Emulator("--token", SECRET, workdir=str(tmp_path / "emu"))
    yield emu
    emu.stop()


def test_error_redacted_before_cut(secret_emulator, mounts, tmp_path):
    """A token that straddles byte 255 of the error text (where it is cut
    for .driftfs/errors) is redacted whole: redaction comes first."""
    emu = secret_emulator
    m = mounts(emu.url, str(tmp_path), env={"DRIFT_TOKEN": SECRET})
    head = "validation_error: "
    pad = "x" * (250 - len(head))
    emu.add_fault(kind="body", status=422, body=json.dumps(
        {"error": {"type": "validation_error",
                   "message": pad + SECRET + " was sent"}}))
    sync(m, 2)
    errors = m.read(".driftfs", "errors").decode()
    log = m.logtext()
    assert "HTTP 422: " + head + pad + "***" in errors, errors
    # Not even the token's head survives the cut.
    assert SECRET[:5] not in errors
    assert SECRET[:5] not in log


def stats_lines(m):
    return m.read(".driftfs", "stats").decode("utf-8").splitlines()


def test_next_link_with_escapes_is_refused(emulator, mounts, tmp_path):
    """A links.next holding an OSC 52 write is not followed: it would
    become a request path and a stats name, printed by `cat stats`."""
    m = mounts(emulator.url, str(tmp_path))
    passes = int(m.status()["sync_passes"])
    link = "https://x/\x1b]52;c;ZXZpbA==\x07/list"
    emulator.add_fault(kind="body", status=200, path="^/conversations/list$",
                       body=json.dumps({"data": [], "links": {"next": link}}))
    sync(m, passes + 1)
    assert_inert(".driftfs/stats", m.read(".driftfs", "stats"))
    errors = m.read(".driftfs", "errors").decode()
    assert "links.next is not a URL of printable ASCII" in errors, errors
    assert not any(r["path"].endswith("/list") and "52" in r["path"]
                   for r in emulator.requests())
    # A printable link is followed; its segments that are no word of the
    # API's are counted as {name}, not as they are.
    emulator.add_fault(kind="body", status=200, path="^/conversations/list$",
                       body=json.dumps({"data": [], "links": {
                           "next": "/Caf%C3%A9-x/list?page_token=A"}}))
    sync(m, passes + 2)
    assert any(r["path"] == "/Caf%C3%A9-x/list" for r in emulator.requests())
    assert any(line.startswith("api GET /{name}/list 404 ")
               for line in stats_lines(m)), stats_lines(m)


def test_stats_endpoints_are_bounded(emulator, mounts, tmp_path):
    """Every distinct path a next link names would be a counter of its
    own, never freed: past a bound they share one, "other"."""
    m = mounts(emulator.url, str(tmp_path))
    passes = int(m.status()["sync_passes"])
    hops = 80
    for i in range(hops):
        here = "^/conversations/list$" if i == 0 else "^/e%d/list$" % i
        emulator.add_fault(kind="body", status=200, path=here,
                           body=json.dumps({"data": [], "links": {
                               "next": "https://x/e%d/list" % (i + 1)}}))
    sync(m, passes + 1)
    assert any(r["path"] == "/e%d/list" % hops for r in emulator.requests())
    names = {mm.group(1) for mm in (re.match(r"^(api .*) \d+ \d+$", line)
                                    for line in stats_lines(m)) if mm}
    assert "api GET /e1/list" in names, names
    assert "api other" in names, names
    assert len(names) <= 65, len(names)


def name_of(s):
    """names.h's encoding of s (when it fits): controls, DEL, '/', '%', C1,
    bidi controls and U+2028/U+2029 as %XX per UTF-8 byte."""
    out = []
    for ch in s:
        o = ord(ch)
        if ch in "/%" or o < 0x20 or 0x7f <= o <= 0x9f or 0x202a <= o <= 0x202e \
                or 0x2066 <= o <= 0x2069 or o in (0x2028, 0x2029):
            out.append("".join("%%%02X" % b for b in ch.encode()))
        else:
            out.append(ch)
    return "".join(out)


def test_names_escape_c1_and_bidi_controls(emulator, mounts, tmp_path):
    """Entry names from API strings hold no C1 or bidi control: the email
    and the attachment name below list as %XX escapes and open by them."""
    data = emulator.data()
    in_convs = {c["contactId"] for c in data["conversations"]}
    lonely = next(c for c in data["contacts"] if c["id"] not in in_convs)
    conv = data["conversations"][0]
    evil = "\u202egpj.exe\u0085"
    emulator.mutate(op="update_contact", id=conv["contactId"],
                    attributes={"email": "rtl%s@x.example" % evil})
    emulator.mutate(op="update_contact", id=lonely["id"],
                    attributes={"email": "lone%s@x.example" % evil})
    msg = emulator.mutate(op="add_message", conversationId=conv["id"],
                          body="<p>file</p>", authorType="contact",
                          attachments=[{"fileName": "report%s.txt" % evil,
                                        "mimeType": "text/plain",
                                        "text": "the bytes"}])
    aid = msg["attachments"][0]["id"]
    m = mounts(emulator.url, str(tmp_path))

    want = "%d-report%%E2%%80%%AEgpj.exe%%C2%%85.txt" % aid
    assert name_of("report%s.txt" % evil) == want.split("-", 1)[1]
    d = m.p("conversations", str(conv["id"]), "attachments")
    names = os.listdir(d)
    assert want in names, names
    assert open(os.path.join(d, want), "rb").read() == b"the bytes"

    emails = os.listdir(m.p("contacts", "by-email"))
    listed = name_of("rtl%s@x.example" % evil)
    assert listed == "rtl%E2%80%AEgpj.exe%C2%85@x.example"
    assert listed in emails, emails
    assert os.readlink(m.p("contacts", "by-email", listed)) == \
        "../%d" % conv["contactId"]
    # An uncached contact is fetched by the escaped name.
    lone = m.p("contacts", "by-email", name_of("lone%s@x.example" % evil))
    assert os.path.isdir(lone)
    assert os.path.realpath(lone) == \
        os.path.realpath(m.p("contacts", str(lonely["id"])))
    # No listed name holds a C1 or bidi control, nor invalid UTF-8.
    for n in names + os.listdir(m.p("contacts", "by-email")):
        assert_inert("entry name", n.encode("utf-8", "strict"))


def tags_of(emulator, cid):
    c = next(x for x in emulator.data()["contacts"] if x["id"] == cid)
    return sorted(t["name"] if isinstance(t, dict) else t
                  for t in c["attributes"].get("tags") or [])


def test_tags_file_escapes_and_decodes(emulator, mounts, tmp_path):
    """The tags file shows a tag with a newline, a bidi override or a '%'
    escaped; removing its line deletes exactly that tag, and an escaped
    line adds the tag it decodes to."""
    conv = emulator.data()["conversations"][0]
    cid = conv["contactId"]
    tags = ["a\nb", "\u202eevil", "50%off", "keep"]
    emulator.mutate(op="update_contact", id=cid,
                    attributes={"tags": [{"name": t} for t in tags]})
    m = mounts(emulator.url, str(tmp_path))
    p = m.p("contacts", str(cid), "tags")
    lines = open(p, "rb").read().decode("utf-8").splitlines()
    assert sorted(lines) == sorted(["a%0Ab", "%E2%80%AEevil", "50%25off",
                                    "keep"]), lines
    for line, tag in (("a%0Ab", "a\nb"), ("%E2%80%AEevil", "\u202eevil"),
                      ("50%25off", "50%off")):
        before = tags_of(emulator, cid)
        lines = open(p).read().splitlines()
        assert line in lines
        with open(p, "w") as f:
            f.write("".join(x + "\n" for x in lines if x != line))
        assert tags_of(emulator, cid) == sorted(t for t in before if t != tag)
    with open(p, "a") as f:
        f.write("x%0Ay%25\n")
    assert tags_of(emulator, cid) == sorted(["keep", "x\ny%"])
    assert sorted(open(p).read().splitlines()) == ["keep", "x%0Ay%25"]
    # A '%' that starts no escape: refused, with the reason.
    with pytest.raises(OSError) as e:
        with open(p, "a") as f:
            f.write("100%\n")
    assert e.value.errno == errno.EINVAL
    assert "a '%' must begin a %XX escape" in \
        m.read(".driftfs", "errors").decode()
    assert tags_of(emulator, cid) == sorted(["keep", "x\ny%"])
