# SPDX-License-Identifier: MIT
"""Tests of the Drift API emulator: envelopes, paging, ids, faults, admin.

Each fixture starts a real emulator process on port 0 (the port comes back
through --port-file) and shuts it down through /_admin/shutdown, so these
tests exercise exactly what the driftfs mount tests will talk to.
"""

import hashlib
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
EMULATOR = os.path.join(HERE, "drift_emulator.py")
TOKEN = "demo-token"
HUGE_CONTACT, HUGE_CONV, HUGE_MSG = 2 ** 53 + 1, 2 ** 53 + 3, 2 ** 53 + 5


class Emu:
    """A running emulator process and a small HTTP client for it."""

    def __init__(self, *flags):
        self.dir = tempfile.mkdtemp(prefix="drift-emu-")
        port_file = os.path.join(self.dir, "port")
        self.stderr = open(os.path.join(self.dir, "stderr"), "w+")
        self.proc = subprocess.Popen(
            [sys.executable, EMULATOR, "--port", "0", "--port-file", port_file,
             "--quiet", *flags], stdout=subprocess.PIPE, stderr=self.stderr)
        deadline = time.monotonic() + 60
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stderr.seek(0)
                raise RuntimeError("emulator did not start: " + self.stderr.read())
            time.sleep(0.02)
        with open(port_file) as f:
            self.port = int(f.read())
        self.base = f"http://127.0.0.1:{self.port}"

    def request(self, method, path, body=None, token=TOKEN, headers=None,
                timeout=10, conn=None):
        """(status, headers dict with lower-case keys, body bytes)."""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs.setdefault("Authorization", f"Bearer {token}")
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        own = conn is None
        if own:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            if own:
                conn.close()

    def json(self, method, path, body=None, expect=200, **kw):
        """Parsed JSON of a request that must answer ``expect``."""
        status, _, data = self.request(method, path, body, **kw)
        assert status == expect, (method, path, status, data[:300])
        return json.loads(data)

    def admin(self, method, path, body=None):
        """An /_admin call (no token)."""
        return self.json(method, "/_admin/" + path, body, token=None)

    def stop(self):
        """Shut down through the admin API and check it exited cleanly."""
        try:
            assert self.admin("POST", "shutdown") == {"ok": True}
            rc = self.proc.wait(10)
        finally:
            if self.proc.poll() is None:      # never leave a stray process
                self.proc.kill()
                self.proc.wait()
            out = self.proc.stdout.read()
            self.proc.stdout.close()
            self.stderr.seek(0)
            err = self.stderr.read()
            self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        assert rc == 0, err
        assert out == b"", "the emulator must print nothing on stdout"
        assert "Traceback" not in err, err


@pytest.fixture(scope="module")
def emu():
    """Default dataset, legacy paging."""
    e = Emu()
    yield e
    e.stop()


@pytest.fixture(scope="module")
def token_emu():
    """Default dataset, page_token paging."""
    e = Emu("--paging", "token")
    yield e
    e.stop()


@pytest.fixture
def fresh():
    """A private emulator for tests that change data or faults."""
    e = Emu("--conversations", "30")
    yield e
    e.stop()


# ----------------------------------------------------------------------
# Auth, paths, envelopes
# ----------------------------------------------------------------------

def test_auth_required(emu):
    for token in (None, "wrong"):
        status, headers, data = emu.request("GET", "/users/list", token=token)
        assert status == 401
        assert json.loads(data) == {"error": {
            "type": "authentication_error",
            "message": "The access token is invalid or has expired"}}
    status, _, _ = emu.request("GET", "/users/list", token=None,
                               headers={"Authorization": f"bEaReR {TOKEN}"})
    assert status == 200


def test_path_variants_and_keepalive(emu):
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    try:
        for path in ("/users/list", "/v1/users/list", "/users/list/",
                     "/v1/contacts/?email=shared@acme.example"):
            status, headers, data = emu.request("GET", path, conn=conn)
            assert status == 200, path
            assert int(headers["content-length"]) == len(data)
            assert "data" in json.loads(data)
    finally:
        conn.close()


def test_errors(emu):
    assert emu.json("GET", "/no/such/thing", expect=404)["error"]["type"] == "not_found"
    assert emu.json("GET", "/contacts/12345", expect=404)["error"]["type"] == "not_found"
    assert emu.json("GET", "/contacts/" + "9" * 30, expect=404)
    assert emu.json("GET", "/contacts", expect=400)["error"]["type"] == "validation_error"
    err = emu.json("POST", "/contacts", b"{not json", expect=400)
    assert err["error"]["type"] == "validation_error"
    assert emu.json("GET", "/conversations/list?limit=abc", expect=400)
    assert emu.json("GET", "/conversations/list?statusId=9", expect=400)
    assert emu.json("GET", "/conversations/1/messages", expect=404)


def test_envelopes(emu):
    data = emu.admin("GET", "data")
    conv_id = data["conversations"][0]["id"]
    user_id = data["users"][1]["id"]
    assert isinstance(emu.json("GET", "/users/list")["data"], list)
    assert emu.json("GET", f"/users/{user_id}")["data"]["id"] == user_id
    multi = emu.json("GET", f"/users?userId={user_id}&userId=228224&userId=1")["data"]
    assert set(multi) == {str(user_id), "228224"}
    assert emu.json("GET", "/users?" + "&".join(["userId=1"] * 21), expect=400)
    assert isinstance(emu.json("GET", "/contacts/attributes")["data"]["properties"], list)
    assert isinstance(emu.json("GET", "/playbooks/list"), list)
    assert isinstance(emu.json("GET", "/playbooks/clp"), list)
    conv = emu.json("GET", f"/conversations/{conv_id}")["data"]
    assert conv == data["conversations"][0]
    msgs = emu.json("GET", f"/conversations/{conv_id}/messages")
    assert isinstance(msgs["data"]["messages"], list)
    stats = emu.json("GET", "/conversations/stats")["conversationCount"]
    assert set(stats) == {"OPEN", "CLOSED", "PENDING", "BULK_SENT"}
    assert sum(stats.values()) == len(data["conversations"])
    accounts = emu.json("GET", "/accounts")["data"]
    assert set(accounts) >= {"accounts", "total"}
    summary = emu.json("GET", "/conversations/list")["data"][0]
    assert set(summary) == {"status", "contactId", "createdAt", "id", "inboxId",
                            "updatedAt"}
    status, headers, text = emu.request("GET", f"/conversations/{HUGE_CONV}/transcript")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert text.decode("utf-8").startswith("[")


def test_big_ids_exact(emu):
    status, _, raw = emu.request("GET", f"/contacts/{HUGE_CONTACT}")
    assert status == 200 and b'"id":9007199254740993' in raw
    assert json.loads(raw)["data"]["id"] == HUGE_CONTACT
    assert json.loads(raw, parse_int=float)["data"]["id"] != HUGE_CONTACT
    conv = emu.json("GET", f"/conversations/{HUGE_CONV}")["data"]
    assert conv["contactId"] == HUGE_CONTACT
    msgs = emu.json("GET", f"/conversations/{HUGE_CONV}/messages")["data"]["messages"]
    assert HUGE_MSG in [m["id"] for m in msgs]
    data = emu.admin("GET", "data")
    for c in data["contacts"]:
        assert c["id"] > 2 ** 32 and "updatedAt" not in c
    assert all(c["id"] > 2 ** 32 for c in data["conversations"])


def test_seeded_awkward_cases(emu):
    data = emu.admin("GET", "data")
    contacts = data["contacts"]
    names = [c["attributes"].get("name") or "" for c in contacts]
    assert "Zoë 🚀 Ñandú" in names
    assert any("\n" in n for n in names) and any("\x1b" in n for n in names)
    tags = [t if isinstance(t, str) else t["name"]
            for c in contacts for t in c["attributes"].get("tags", [])]
    assert "sales/emea" in tags and max(map(len, tags)) >= 300
    shapes = {type(t) for c in contacts for t in c["attributes"].get("tags", [])}
    assert shapes == {str, dict}
    emails = [c["attributes"]["email"] for c in contacts]
    assert max(map(len, emails)) >= 260
    shared = [c for c in contacts if c["attributes"]["email"] == "shared@acme.example"]
    assert len(shared) == 2 and shared[0]["attributes"]["externalId"] != \
        shared[1]["attributes"]["externalId"]
    assert any("/" in (c["attributes"].get("externalId") or "") for c in contacts)
    assert any(c["attributes"].get("externalId", "x") is None for c in contacts)
    used = {c["contactId"] for c in data["conversations"]}
    assert used <= {c["id"] for c in contacts}
    assert len({c["id"] for c in contacts} - used) >= 1
    users = data["users"]
    assert [u["name"] for u in users if u["bot"]] == ["Driftbot"]
    assert any("phone" not in u for u in users)
    counts = [len(m) for m in data["messages"].values()]
    assert 0 in counts and max(counts) > 100 and sum(c > 50 for c in counts) >= 3
    bodies = [m["body"] for ms in data["messages"].values() for m in ms]
    assert sum("purple elephant quorum" in b for b in bodies) == 1
    assert any("\x1b[31m" in b for b in bodies) and any("🎉" in b for b in bodies)
    assert any('<span class="driftiwyg-' in b for b in bodies)
    assert any("&amp;" in b for b in bodies) and any("&#39;" in b for b in bodies)
    for conv in data["conversations"]:
        msgs = data["messages"][str(conv["id"])]
        times = [m["createdAt"] for m in msgs]
        assert times == sorted(times)
        assert conv["updatedAt"] == (times[-1] if times else conv["createdAt"])
    assert any("/" in t["name"] for c in data["conversations"]
               for t in c["conversationTags"])


def test_attachments(emu):
    data = emu.admin("GET", "data")
    atts = data["attachments"]
    assert len(atts) == 10
    names = {a["fileName"] for a in atts.values()}
    assert "q3/report.pdf" in names and any(" " in n for n in names)
    assert any(not n.isascii() for n in names)
    sizes = []
    for aid, meta in atts.items():
        status, headers, body = emu.request("GET", f"/attachments/{aid}/data")
        assert status == 200
        assert headers["content-type"] == meta["mimeType"]
        assert len(body) == meta["size"]
        assert hashlib.sha256(body).hexdigest() == meta["sha256"]
        sizes.append(len(body))
        msgs = data["messages"][str(meta["conversationId"])]
        msg = next(m for m in msgs if m["id"] == meta["messageId"])
        ref = next(a for a in msg["attachments"] if a["id"] == int(aid))
        assert ref["url"] == f"{emu.base}/attachments/{aid}/data"
        if meta["mimeType"] == "application/octet-stream":
            assert b"\0" in body
    assert 0 in sizes and max(sizes) <= 200 * 1024
    assert emu.json("GET", "/attachments/1/data", expect=404)


def test_deterministic_dataset():
    def dump(e):
        _, _, raw = e.request("GET", "/_admin/data", token=None)
        return raw.replace(e.base.encode(), b"BASE")
    a, b, c = Emu("--seed", "7"), Emu("--seed", "7"), Emu("--seed", "8")
    try:
        assert dump(a) == dump(b)
        assert dump(a) != dump(c)
    finally:
        for e in (a, b, c):
            e.stop()


# ----------------------------------------------------------------------
# Paging
# ----------------------------------------------------------------------

def expected_order(data, statuses=None):
    """Conversation ids in list order (updatedAt desc, id desc)."""
    convs = [c for c in data["conversations"]
             if statuses is None or c["status"] in statuses]
    convs.sort(key=lambda c: (c["updatedAt"], c["id"]), reverse=True)
    return [c["id"] for c in convs]


def walk_legacy(e, query):
    """Follow pagination.next until it disappears; returns (ids, pages)."""
    ids, pages, nxt = [], 0, None
    while True:
        q = query + (f"&next={urllib.parse.quote(nxt)}" if nxt is not None else "")
        out = e.json("GET", "/conversations/list?" + q)
        pages += 1
        assert "links" not in out
        ids += [c["id"] for c in out["data"]]
        if "pagination" not in out:
            return ids, pages
        assert out["pagination"]["more"] is True
        nxt = out["pagination"]["next"]
        assert isinstance(nxt, str)


def test_legacy_paging(emu):
    data = emu.admin("GET", "data")
    ids, pages = walk_legacy(emu, "limit=7")
    assert ids == expected_order(data) and len(set(ids)) == len(ids) == 60
    assert pages == 9
    ids, _ = walk_legacy(emu, "")
    assert ids == expected_order(data)
    ids, _ = walk_legacy(emu, "limit=4&statusId=1&statusId=3")
    assert ids == expected_order(data, {"open", "pending"})
    assert len(emu.json("GET", "/conversations/list?limit=500")["data"]) == 50
    assert len(emu.json("GET", "/conversations/list")["data"]) == 25


def test_legacy_paging_while_data_changes(fresh):
    """Offset paging: a conversation bumped mid-walk may move to pages
    already read (the next incremental sync finds it by its newer
    updatedAt), but no untouched conversation is ever skipped."""
    e = fresh
    order = expected_order(e.admin("GET", "data"))
    seen, nxt, bumped = [], None, []
    while True:
        q = "limit=7" + (f"&next={nxt}" if nxt is not None else "")
        out = e.json("GET", "/conversations/list?" + q)
        seen += [c["id"] for c in out["data"]]
        if len(bumped) < 2:                 # bump one unseen, one seen
            target = order[-1 - len(bumped)] if not bumped else seen[0]
            e.admin("POST", "mutate", {"op": "add_message", "conversationId": target,
                                       "body": "bump"})
            bumped.append(target)
        if "pagination" not in out:
            break
        nxt = out["pagination"]["next"]
    assert set(order) - set(bumped) <= set(seen)


def walk_token(e, first):
    """Follow links.next verbatim; returns (ids, pages)."""
    ids, pages, url = [], 0, first
    while True:
        out = e.json("GET", url)
        pages += 1
        assert "pagination" not in out
        assert out["links"]["self"].startswith(e.base + "/conversations/list?page_token=")
        ids += [c["id"] for c in out["data"]]
        if "next" not in out["links"]:
            return ids, pages
        url = out["links"]["next"][len(e.base):]


def test_token_paging(token_emu):
    e = token_emu
    data = e.admin("GET", "data")
    ids, pages = walk_token(e, "/conversations/list?page_token=&limit=8")
    assert ids == expected_order(data) and len(set(ids)) == 60 and pages == 8
    ids, pages = walk_token(e, "/conversations/list")
    assert ids == expected_order(data) and pages == 3
    ids, _ = walk_token(e, "/conversations/list?limit=5&statusId=2")
    assert ids == expected_order(data, {"closed"})
    assert len(e.json("GET", "/conversations/list?limit=1000")["data"]) == 60
    # A limit beside a non-empty page_token is ignored: the token carries it.
    first = e.json("GET", "/conversations/list?limit=3")
    nxt = first["links"]["next"][len(e.base):]
    assert len(e.json("GET", nxt + "&limit=20")["data"]) == 3
    assert e.json("GET", "/conversations/list?page_token=garbage", expect=400)


def test_message_paging(emu):
    data = emu.admin("GET", "data")
    by_count = {}
    for cid, msgs in data["messages"].items():
        by_count.setdefault(len(msgs), []).append(int(cid))
    shapes = set()
    for count in (0, 50, 51, 100, 137, max(by_count)):
        for cid in by_count[count]:
            got, nxt, pages = [], None, 0
            while True:
                q = f"?next={nxt}" if nxt is not None else ""
                out = emu.json("GET", f"/conversations/{cid}/messages{q}")
                pages += 1
                page = out["data"]["messages"]
                assert len(page) <= 50
                got += page
                pag = out.get("pagination")
                if pag and pag["more"]:
                    assert len(page) == 50
                    nxt = pag["next"]
                    continue
                shapes.add("absent" if pag is None else "more-false")
                if pag is not None:
                    assert pag == {"more": False}
                break
            assert got == data["messages"][str(cid)]
            assert pages == max(1, -(-count // 50))
    assert shapes == {"absent", "more-false"}


# ----------------------------------------------------------------------
# Writes
# ----------------------------------------------------------------------

def test_contact_writes(fresh):
    e = fresh
    c = e.json("POST", "/contacts", {"attributes": {"email": "new@x.example",
                                                    "name": "New Person"}})["data"]
    assert c["id"] > 2 ** 32 and c["attributes"]["externalId"] is None
    assert c["attributes"]["start_date"] == c["createdAt"]
    assert e.json("POST", "/contacts", {"attributes": {"email": "new@x.example"}},
                  expect=409)["error"]["type"] == "conflict"
    assert e.json("POST", "/contacts", {"attributes": {"name": "x"}}, expect=400)
    d = e.json("POST", "/contacts", {"attributes": {"email": "new@x.example",
                                                    "externalId": "e/1"}})["data"]
    again = e.json("POST", "/contacts", {"attributes": {"email": "new@x.example",
                                                        "externalId": "e/1",
                                                        "city": "Oslo"}})["data"]
    assert again["id"] == d["id"] and again["attributes"]["city"] == "Oslo"
    found = e.json("GET", "/contacts?email=NEW@x.example")["data"]
    assert [x["id"] for x in found] == [c["id"], d["id"]]
    p = e.json("PATCH", f"/contacts/{c['id']}", {"attributes": {"plan": "pro"}})["data"]
    assert p["attributes"]["plan"] == "pro" and p["attributes"]["name"] == "New Person"
    assert e.json("PATCH", "/contacts/1", {"attributes": {}}, expect=404)
    e.json("POST", f"/contacts/{c['id']}/tags", [{"name": "a/b"}, {"name": "c"}])
    assert e.json("DELETE", f"/contacts/{c['id']}/tags/" + urllib.parse.quote("a/b", safe="")) \
        == {"result": "OK", "ok": True}
    e.json("POST", f"/contacts/{c['id']}/tags/delete/_bulk", ["c"])
    assert e.json("GET", f"/contacts/{c['id']}")["data"]["attributes"]["tags"] == []
    ev = e.json("POST", "/contacts/timeline", {"contactId": c["id"], "event": "Paid",
                                               "createdAt": 1700000000000})["data"]
    assert ev["contactId"] == c["id"] and ev["event"] == "Paid"
    assert e.json("POST", "/emails/unsubscribe", ["new@x.example"]) == \
        {"result": "OK", "ok": True}
    assert e.json("POST", "/emails/unsubscribe", {"x": 1}, expect=400)
    assert e.json("DELETE", f"/contacts/{c['id']}") == {"result": "OK", "ok": True}
    assert e.json("GET", f"/contacts/{c['id']}", expect=404)
    data = e.admin("GET", "data")
    assert data["unsubscribed"] == ["new@x.example"]
    assert data["timeline"][str(c["id"])][0]["event"] == "Paid"


def test_user_update(fresh):
    e = fresh
    uid = e.admin("GET", "data")["users"][1]["id"]
    before = e.json("GET", f"/users/{uid}")["data"]
    after = e.json("PATCH", f"/users/update?userId={uid}",
                   {"name": "Renamed", "availability": "OFFLINE"})["data"]
    assert after["name"] == "Renamed" and after["updatedAt"] > before["updatedAt"]
    assert e.json("PATCH", f"/users/update?userId={uid}", {"role": "admin"}, expect=400)
    assert e.json("PATCH", f"/users/update?userId={uid}",
                  {"availability": "ON_CALL"}, expect=400)


def test_messages_and_conversations(fresh):
    e = fresh
    data = e.admin("GET", "data")
    conv = data["conversations"][-1]          # least recently updated
    path = f"/conversations/{conv['id']}/messages"
    assert e.json("POST", path, {"body": "<p>x</p>"}, expect=400)
    msg = e.json("POST", path, {"type": "chat", "body": "<p>Hi &amp; bye</p>",
                                "orgId": 1})["data"]
    assert msg["author"] == {"type": "user", "id": 228224, "bot": True}
    first = e.json("GET", "/conversations/list?limit=1")["data"][0]
    assert first["id"] == conv["id"] and first["updatedAt"] >= msg["createdAt"]
    uid = data["users"][1]["id"]
    note = e.json("POST", path, {"type": "private_note", "body": "n",
                                 "userId": uid})["data"]
    assert note["author"]["id"] == uid
    e.json("POST", path, {"type": "edit", "editedMessageId": msg["id"],
                          "editType": "replace_body", "body": "<p>edited</p>"})
    e.json("POST", path, {"type": "edit", "editedMessageId": note["id"],
                          "editType": "delete", "body": ""})
    msgs = e.json("GET", path)["data"]["messages"]
    assert msgs[-1]["id"] == msg["id"] and msgs[-1]["body"] == "<p>edited</p>"
    assert note["id"] not in [m["id"] for m in msgs]
    new = e.json("POST", "/conversations/new", {
        "email": "lead@new.example",
        "message": {"body": "Hello", "attributes": {"integrationSource": "test"}}})
    assert "data" not in new and new["status"] == "open"
    assert set(new) == {"status", "participants", "contactId", "createdAt", "id", "inboxId"}
    contact = e.json("GET", f"/contacts/{new['contactId']}")["data"]
    assert contact["attributes"]["email"] == "lead@new.example"
    first = e.json("GET", f"/conversations/{new['id']}/messages")["data"]["messages"][0]
    assert first["author"]["type"] == "contact" and first["body"] == "Hello"
    assert e.json("GET", "/conversations/stats")["conversationCount"]["OPEN"] == \
        sum(c["status"] == "open" for c in data["conversations"]) + 1


def test_reports(fresh):
    e = fresh
    data = e.admin("GET", "data")
    out = e.json("POST", "/reports/conversations", {
        "filters": [{"property": "status", "operation": "IN", "values": ["closed"]},
                    {"property": "updatedAt", "operation": "BETWEEN",
                     "values": ["2020-01-01", 4102444800000]}],
        "metrics": ["createdAt", "lastAgentId", "timeToCloseMillis"]})
    closed = [c for c in data["conversations"] if c["status"] == "closed"]
    assert out["count"] == len(out["data"]) == len(closed)
    row = out["data"][0]
    assert len(row["metrics"]) == 3 and isinstance(row["conversationId"], int)
    all_rows = e.json("POST", "/reports/conversations",
                      {"metrics": ["relatedPlaybookId"]})["data"]
    assert any(r["metrics"] == ["NaN"] for r in all_rows)
    has = e.json("POST", "/reports/conversations", {
        "filters": [{"property": "relatedPlaybookId", "operation": "HAS_PROPERTY"}],
        "metrics": ["relatedPlaybookId"]})
    assert has["count"] == sum("relatedPlaybookId" in c for c in data["conversations"])
    assert e.json("POST", "/reports/conversations", {"metrics": ["status"]}, expect=400)
    e.admin("POST", "faults", {"report_limit": 2})
    e.json("POST", "/reports/conversations", {"metrics": ["createdAt"]})
    e.json("POST", "/reports/conversations", {"metrics": ["createdAt"]})
    status, headers, _ = e.request("POST", "/reports/conversations",
                                   {"metrics": ["createdAt"]})
    assert status == 429 and int(headers["retry-after"]) >= 1


def test_accounts(fresh):
    e = fresh
    acc = e.json("POST", "/accounts/create", {"ownerId": 244297, "name": "New",
                                              "domain": "new.example"})["data"]
    assert acc["accountId"].endswith("_new.example") and acc["deleted"] is False
    assert e.json("POST", "/accounts/create", {"ownerId": 1, "domain": "new.example"},
                  expect=409)
    assert e.json("POST", "/accounts/create", {"domain": "x.example"}, expect=400)
    upd = e.json("PATCH", "/accounts/update", {"accountId": acc["accountId"],
                                               "ownerId": 244297, "name": "Newer"})
    assert upd["data"]["name"] == "Newer"
    seen, index = [], 0
    while True:
        out = e.json("GET", f"/accounts?index={index}&size=3")["data"]
        seen += [a["accountId"] for a in out["accounts"]]
        if "next" not in out:
            break
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(out["next"]).query)
        index = int(q["index"][0])
    assert len(seen) == len(set(seen)) == out["total"] == 7
    assert e.json("DELETE", f"/accounts/{acc['accountId']}") == {"result": "OK", "ok": True}
    assert e.json("GET", f"/accounts/{acc['accountId']}")["data"]["deleted"] is True
    assert e.json("GET", "/accounts?size=100")["data"]["total"] == 6


def test_oauth(fresh):
    e = fresh
    form = "grant_type=authorization_code&client_id=c&client_secret=s&code=valid-code"
    hdr = {"Content-Type": "application/x-www-form-urlencoded"}
    tok = e.json("POST", "/oauth2/token", form, token=None, headers=hdr)
    assert tok["token_type"] == "bearer" and tok["expires_in"] == 7200
    assert tok["orgId"] == 1351205
    assert e.json("GET", "/users/list", token=tok["access_token"])
    info = e.json("POST", "/app/token_info", {"access_token": tok["access_token"]})
    assert info["authenticated_userid"] == "orgId:1351205" and info["expires_in"] > 0
    assert e.json("POST", "/app/token_info", {"access_token": TOKEN})["expires_in"] == 0
    assert e.json("POST", "/app/token_info", {"access_token": "bogus"}, expect=400)
    bad = form.replace("valid-code", "nope")
    assert e.json("POST", "/oauth2/token", bad, token=None, headers=hdr, expect=400)
    e.admin("POST", "tokens/expire")
    assert e.json("GET", "/users/list", token=tok["access_token"], expect=401)
    camel = e.json("POST", "/oauth2/token", {"grantType": "refresh_token",
                                             "clientId": "c", "clientSecret": "s",
                                             "refreshToken": tok["refresh_token"]},
                   token=None)
    assert camel["accessToken"] == camel["access_token"]
    assert e.json("GET", "/users/list", token=camel["access_token"])
    again = f"grant_type=refresh_token&client_id=c&client_secret=s&refresh_token={tok['refresh_token']}"
    assert e.json("POST", "/oauth2/token", again, token=None, headers=hdr, expect=400)


# ----------------------------------------------------------------------
# Faults
# ----------------------------------------------------------------------

def test_counted_status_fault(fresh):
    e = fresh
    e.admin("POST", "faults/add", {"kind": "status", "status": 502, "count": 2,
                                   "path": "^/users/list$", "method": "GET"})
    assert e.request("GET", "/playbooks/list")[0] == 200
    assert e.request("GET", "/users/list")[0] == 502
    status, _, body = e.request("GET", "/users/list")
    assert status == 502 and json.loads(body)["error"]["type"] == "server_error"
    assert e.request("GET", "/users/list")[0] == 200
    assert e.admin("GET", "faults")["pending"] == []


def test_redirect_fault(fresh):
    e = fresh
    e.admin("POST", "faults/add", {"kind": "redirect", "status": 307,
                                   "location": "http://127.0.0.1:9/v1{path}"})
    status, headers, _ = e.request("GET", "/users/list?userId=1")
    assert status == 307
    assert headers["location"] == "http://127.0.0.1:9/v1/users/list?userId=1"
    assert e.request("GET", "/users/list")[0] == 200
    with pytest.raises(AssertionError):
        e.admin("POST", "faults/add", {"kind": "redirect", "status": 200,
                                       "location": "http://x/"})
    with pytest.raises(AssertionError):
        e.admin("POST", "faults/add", {"kind": "redirect"})


def test_https(pki):
    """--tls-cert/--tls-key: HTTPS that verifies against the test CA; a
    client that rejects the certificate never gets as far as a request."""
    e = Emu("--conversations", "2", "--tls-cert", pki["good"][0],
            "--tls-key", pki["good"][1])
    try:
        trusting = ssl.create_default_context(cafile=pki["ca"])
        conn = http.client.HTTPSConnection("127.0.0.1", e.port, timeout=10,
                                           context=trusting)
        conn.request("GET", "/_admin/ping")
        ping = json.loads(conn.getresponse().read())
        assert ping["base_url"] == f"https://127.0.0.1:{e.port}"
        conn.request("GET", "/users/list", headers={"Authorization": "Bearer " + TOKEN})
        assert conn.getresponse().status == 200
        conn.close()
        with pytest.raises(ssl.SSLCertVerificationError):
            c2 = http.client.HTTPSConnection("127.0.0.1", e.port, timeout=10,
                                             context=ssl.create_default_context())
            c2.request("GET", "/users/list", headers={"Authorization": "Bearer " + TOKEN})
        # Plain HTTP to the TLS port gets no answer the client can read.
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            e.request("GET", "/users/list")
        conn = http.client.HTTPSConnection("127.0.0.1", e.port, timeout=10,
                                           context=trusting)
        conn.request("GET", "/_admin/requests")
        logged = json.loads(conn.getresponse().read())["requests"]
        assert [r["path"] for r in logged] == ["/users/list"]
        conn.request("POST", "/_admin/shutdown", body=b"{}")
        conn.getresponse().read()
        assert e.proc.wait(10) == 0
    finally:
        if e.proc.poll() is None:
            e.proc.kill()
            e.proc.wait()


def test_burst429_and_body_faults(fresh):
    e = fresh
    e.admin("POST", "faults/add", {"kind": "burst429", "count": 1, "retry_after": 3})
    e.admin("POST", "faults/add", {"kind": "burst429", "count": 1, "retry_after": None})
    status, headers, _ = e.request("GET", "/users/list")
    assert status == 429 and headers["retry-after"] == "3"
    status, headers, _ = e.request("GET", "/users/list")
    assert status == 429 and "retry-after" not in headers
    e.admin("POST", "faults/add", {"kind": "malformed"})
    status, _, body = e.request("GET", "/users/list")
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(body)
    e.admin("POST", "faults/add", {"kind": "body", "body": '{"data": 7}'})
    assert e.request("GET", "/users/list")[2] == b'{"data": 7}'
    assert e.json("POST", "/_admin/faults/add", {"kind": "bogus"}, token=None, expect=400)


def test_huge_fault(fresh):
    e = fresh
    e.admin("POST", "faults/add", {"kind": "huge", "bytes": 3 << 20})
    status, headers, body = e.request("GET", "/users/list")
    assert status == 200 and len(body) == 3 << 20
    assert int(headers["content-length"]) == 3 << 20
    assert set(json.loads(body)["data"]) == {"x"}
    assert e.request("GET", "/users/list")[2] != body
    e.json("POST", "/_admin/faults/add", {"kind": "huge", "bytes": 3}, token=None,
           expect=400)


def test_repeat_cursor_fault(fresh):
    e = fresh
    path = "^/conversations/list$"
    e.admin("POST", "faults/add", {"kind": "repeat_cursor", "path": path, "count": 2})
    first = e.json("GET", "/conversations/list?limit=10")
    assert first["pagination"]["next"] == "0"
    again = e.json("GET", "/conversations/list?limit=10&next=" + first["pagination"]["next"])
    assert again == first
    # On the last page too (where there is normally no cursor).
    conv = max(e.admin("GET", "data")["conversations"],
               key=lambda c: len(e.admin("GET", "data")["messages"][str(c["id"])]))
    e.admin("POST", "faults/add", {"kind": "repeat_cursor",
                                   "path": "/messages$", "count": 1})
    out = e.json("GET", "/conversations/%d/messages?next=50" % conv["id"])
    assert out["pagination"] == {"more": True, "next": "50"}
    e.admin("POST", "faults/add", {"kind": "repeat_cursor", "path": "^/accounts$"})
    out = e.json("GET", "/accounts?index=0&size=2")
    assert out["data"]["next"] == "/accounts?index=0&size=2"


def test_repeat_cursor_fault_token_paging():
    e = Emu("--paging", "token")
    try:
        e.admin("POST", "faults/add", {"kind": "repeat_cursor"})
        out = e.json("GET", "/conversations/list?limit=5")
        assert out["links"]["next"] == out["links"]["self"]
        plain = e.json("GET", "/conversations/list?limit=5")
        nxt = plain["links"]["next"][len(e.base):]
        second = e.json("GET", nxt)
        e.admin("POST", "faults/add", {"kind": "rewind", "by": 2})
        rewound = e.json("GET", nxt)   # offset 5 - 2 = 3
        ids = [c["id"] for c in plain["data"]] + [c["id"] for c in second["data"]]
        assert [c["id"] for c in rewound["data"]] == ids[3:8]
    finally:
        e.stop()


def test_rewind_fault(fresh):
    e = fresh
    page1 = e.json("GET", "/conversations/list?limit=10")
    e.admin("POST", "faults/add", {"kind": "rewind", "by": 4,
                                   "path": "^/conversations/list$"})
    page2 = e.json("GET", "/conversations/list?limit=10&next=10")
    ids1 = [c["id"] for c in page1["data"]]
    ids2 = [c["id"] for c in page2["data"]]
    assert ids2[:4] == ids1[6:]
    assert page2["pagination"]["next"] == "16"
    e.json("POST", "/_admin/faults/add", {"kind": "rewind", "by": 0}, token=None,
           expect=400)


def test_rate_limit(fresh):
    e = fresh
    e.admin("POST", "faults", {"rate": 2, "burst": 3})
    conn = http.client.HTTPConnection("127.0.0.1", e.port, timeout=10)
    statuses = [e.request("GET", "/users/list", conn=conn) for _ in range(6)]
    conn.close()
    codes = [s for s, _, _ in statuses]
    assert codes[:3] == [200, 200, 200] and 429 in codes[3:]
    limited = next(h for s, h, _ in statuses if s == 429)
    assert int(limited["retry-after"]) >= 1
    e.admin("POST", "faults", {"retry_after": False})
    time.sleep(0.1)
    codes = []
    for _ in range(5):
        status, headers, _ = e.request("GET", "/users/list")
        codes.append(status)
        if status == 429:
            assert "retry-after" not in headers
    assert 429 in codes
    time.sleep(1.6)                      # the bucket drains at 2/s
    assert e.request("GET", "/users/list")[0] == 200
    e.admin("POST", "faults", {"rate": 0})
    assert all(e.request("GET", "/users/list")[0] == 200 for _ in range(10))


def test_fail_rate_and_latency(fresh):
    e = fresh
    e.admin("POST", "faults", {"fail_rate": 1.0, "fail_status": 504})
    assert e.request("GET", "/users/list")[0] == 504
    assert e.admin("GET", "ping")["ok"] is True      # admin is never faulted
    e.admin("POST", "faults", {"fail_rate": 0, "latency_ms": 300})
    t0 = time.monotonic()
    assert e.request("GET", "/users/list")[0] == 200
    assert time.monotonic() - t0 >= 0.3
    e.admin("POST", "faults", {"latency_ms": 0})
    assert e.json("POST", "/_admin/faults", {"fail_rate": 3}, token=None, expect=400)


def test_fail_rate_flag():
    e = Emu("--fail-rate", "0.5", "--fail-status", "500", "--conversations", "5")
    try:
        codes = {e.request("GET", "/users/list")[0] for _ in range(40)}
        assert codes == {200, 500}
    finally:
        e.stop()


def test_stall_fault(fresh):
    e = fresh
    e.admin("POST", "faults/add", {"kind": "stall", "seconds": 1.5, "path": "users"})
    with pytest.raises(socket.timeout):
        e.request("GET", "/users/list", timeout=0.5)
    assert e.request("GET", "/users/list")[0] == 200


def test_throttle_fault(fresh):
    e = fresh
    _, _, whole = e.request("GET", "/users/list")
    rate = len(whole) / 0.6              # about 0.6 s for the body
    e.admin("POST", "faults/add", {"kind": "throttle", "path": "^/users/list$",
                                   "bytes_per_second": rate})
    t0 = time.monotonic()
    status, _, body = e.request("GET", "/users/list")
    took = time.monotonic() - t0
    assert (status, body) == (200, whole)
    assert 0.5 <= took < 5, took
    # Stalled: the first bytes, then nothing for longer than the reader
    # waits; the request is logged with the fault.
    e.admin("POST", "faults/add", {"kind": "throttle", "path": "^/users/list$",
                                   "bytes_per_second": 1 << 20,
                                   "stall_after": 10, "seconds": 2})
    conn = http.client.HTTPConnection("127.0.0.1", e.port, timeout=0.5)
    try:
        conn.request("GET", "/users/list",
                     headers={"Authorization": f"Bearer {TOKEN}"})
        resp = conn.getresponse()
        assert resp.status == 200
        assert len(resp.read(10)) == 10
        with pytest.raises(socket.timeout):
            resp.read(1)
    finally:
        conn.close()
    for bad in ({"bytes_per_second": 0}, {"bytes_per_second": 10,
                                          "stall_after": -1}):
        e.json("POST", "/_admin/faults/add", dict(kind="throttle", **bad),
               token=None, expect=400)
    # The stalled reply is logged once its thread gives up on the reader.
    deadline = time.monotonic() + 10
    while True:
        log = e.admin("GET", "requests")["requests"]
        faults = [r["fault"] for r in log if r["fault"]]
        if len(faults) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert faults == ["throttle", "throttle"]


def test_connection_faults(fresh):
    e = fresh
    e.admin("POST", "faults/add", {"kind": "reset", "path": "^/users/list$"})
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        e.request("GET", "/users/list")
    e.admin("POST", "faults/add", {"kind": "truncate", "path": "^/users/list$"})
    with pytest.raises(http.client.IncompleteRead):
        e.request("GET", "/users/list")
    e.admin("POST", "faults/add", {"kind": "reset_mid_body", "path": "^/users/list$"})
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        e.request("GET", "/users/list")
    assert e.request("GET", "/users/list")[0] == 200
    # A faulted reply is logged when its thread is done with the socket,
    # which may be after the client has read what it got and moved on.
    deadline = time.monotonic() + 10
    while True:
        log = e.admin("GET", "requests")["requests"]
        if len(log) >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sorted(str(r["fault"]) for r in log[-4:]) == sorted(
        ["reset", "truncate", "reset_mid_body", "None"])


def test_fault_skip_and_process_first(fresh):
    e = fresh
    conv = e.admin("GET", "data")["conversations"][0]["id"]
    e.admin("POST", "faults/add", {"kind": "status", "status": 500, "skip": 1,
                                   "path": "/messages$"})
    path = f"/conversations/{conv}/messages"
    assert e.request("GET", path)[0] == 200
    assert e.request("GET", path)[0] == 500
    e.admin("POST", "faults/add", {"kind": "reset", "process_first": True,
                                   "method": "POST"})
    before = len(e.admin("GET", "data")["messages"][str(conv)])
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        e.request("POST", path, {"type": "chat", "body": "lost reply"})
    assert len(e.admin("GET", "data")["messages"][str(conv)]) == before + 1
    e.admin("POST", "faults/add", {"kind": "status", "status": 504,
                                   "process_first": True, "method": "POST"})
    assert e.request("POST", path, {"type": "chat", "body": "stored, then 504"})[0] == 504
    bodies = [m["body"] for m in e.admin("GET", "data")["messages"][str(conv)]]
    assert len(bodies) == before + 2 and bodies[-1] == "stored, then 504"


# ----------------------------------------------------------------------
# Admin
# ----------------------------------------------------------------------

def test_admin_log_and_stats(fresh):
    e = fresh
    e.admin("POST", "reset")
    conv = e.admin("GET", "data")["conversations"][0]["id"]
    e.request("GET", f"/conversations/{conv}")
    e.request("GET", f"/v1/conversations/{conv}/messages?next=0")
    e.request("POST", "/contacts", {"attributes": {"email": "log@x.example"}})
    e.request("GET", "/users/list", token="bad")
    e.request("GET", "/accounts/123458_acme.example")
    stats = e.admin("GET", "stats")
    assert stats["total"] == 5
    assert stats["by_endpoint"] == {"GET /conversations/{id}": 1,
                                    "GET /conversations/{id}/messages": 1,
                                    "POST /contacts": 1, "GET /users/list": 1,
                                    "GET /accounts/{id}": 1}
    assert stats["by_status"] == {"200": 4, "401": 1}
    reqs = e.admin("GET", "requests")["requests"]
    assert [r["seq"] for r in reqs] == [1, 2, 3, 4, 5]
    assert reqs[1]["path"] == f"/v1/conversations/{conv}/messages"
    assert reqs[1]["query"] == "next=0" and reqs[0]["body"] is None
    assert json.loads(reqs[2]["body"]) == {"attributes": {"email": "log@x.example"}}
    assert [r["seq"] for r in e.admin("GET", "requests?since=3")["requests"]] == [4, 5]
    e.admin("POST", "reset")
    assert e.admin("GET", "stats") == {"total": 0, "by_endpoint": {}, "by_status": {}}


def test_admin_mutate(fresh):
    e = fresh
    data = e.admin("GET", "data")
    top = max(c["updatedAt"] for c in data["conversations"])
    conv = data["conversations"][-1]
    msg = e.admin("POST", "mutate", {"op": "add_message", "conversationId": conv["id"],
                                     "body": "<p>from the UI</p>", "authorType": "user",
                                     "authorId": data["users"][1]["id"],
                                     "attachments": [{"fileName": "a b.txt",
                                                      "mimeType": "text/plain",
                                                      "text": "hello"}]})
    assert msg["author"]["type"] == "user"
    listed = e.json("GET", "/conversations/list?limit=1")["data"][0]
    assert listed["id"] == conv["id"] and listed["updatedAt"] > top
    aid = msg["attachments"][0]["id"]
    assert e.request("GET", f"/attachments/{aid}/data")[2] == b"hello"
    changed = e.admin("POST", "mutate", {"op": "set_status", "conversationId": conv["id"],
                                         "status": "pending"})
    assert changed["status"] == "pending" and changed["updatedAt"] > listed["updatedAt"]
    cid = data["contacts"][5]["id"]
    upd = e.admin("POST", "mutate", {"op": "update_contact", "id": cid,
                                     "attributes": {"city": "Lima"}})
    assert e.json("GET", f"/contacts/{cid}")["data"] == upd
    new = e.admin("POST", "mutate", {"op": "new_conversation", "contactId": cid,
                                     "body": "<p>new</p>"})
    assert e.json("GET", f"/conversations/{new['id']}")["data"] == new
    user = e.admin("POST", "mutate", {"op": "update_user", "id": data["users"][2]["id"],
                                      "fields": {"availability": "ON_CALL"}})
    assert user["availability"] == "ON_CALL"
    conv_msgs = e.json("GET", f"/conversations/{conv['id']}/messages")["data"]["messages"]
    edited = e.admin("POST", "mutate", {"op": "edit_message", "conversationId": conv["id"],
                                        "messageId": conv_msgs[0]["id"], "body": "<p>e</p>"})
    assert edited["body"] == "<p>e</p>"
    e.admin("POST", "mutate", [{"op": "delete_message", "conversationId": conv["id"],
                                "messageId": conv_msgs[0]["id"]}])
    after = e.json("GET", f"/conversations/{conv['id']}/messages")["data"]["messages"]
    assert [m["id"] for m in after] == [m["id"] for m in conv_msgs[1:]]
    e.admin("POST", "mutate", {"op": "delete_contact", "id": cid})
    assert e.json("GET", f"/contacts/{cid}", expect=404)
    assert e.json("POST", "/_admin/mutate", {"op": "nope"}, token=None, expect=400)


def list_ids(e):
    """Every conversation id the list shows."""
    return walk_legacy(e, "limit=50")[0]


def test_admin_deletions(fresh):
    """Server-side deletions and erasure leave no trace in any endpoint."""
    e = fresh
    data = e.admin("GET", "data")
    convs = data["conversations"]
    # A message deleted without touching the conversation: updatedAt stays,
    # so the list order does not move; its attachments only it held go.
    conv = next(c for c in convs if len(data["messages"][str(c["id"])]) > 1)
    before = e.json("GET", f"/conversations/{conv['id']}")["data"]
    msgs = data["messages"][str(conv["id"])]
    e.admin("POST", "mutate", {"op": "delete_message", "conversationId": conv["id"],
                               "messageId": msgs[-1]["id"], "touch": False})
    assert e.json("GET", f"/conversations/{conv['id']}")["data"] == before
    after = e.json("GET", f"/conversations/{conv['id']}/messages")["data"]["messages"]
    assert [m["id"] for m in after] == [m["id"] for m in msgs[:-1]]
    assert e.json("POST", "/_admin/mutate", {"op": "delete_message", "touch": 1,
                                             "conversationId": conv["id"],
                                             "messageId": msgs[0]["id"]},
                  token=None, expect=400)
    # A conversation deleted: gone from GET, messages, list and stats;
    # nothing else's updatedAt moved.
    gone = next(c for c in convs if c["id"] != conv["id"])
    att = next((a for a in data["attachments"].values()
                if a["conversationId"] == gone["id"]), None)
    e.admin("POST", "mutate", {"op": "delete_conversation", "conversationId": gone["id"]})
    e.json("GET", f"/conversations/{gone['id']}", expect=404)
    e.json("GET", f"/conversations/{gone['id']}/messages", expect=404)
    if att:
        assert e.request("GET", f"/attachments/{att['id']}/data")[0] == 404
    left = e.admin("GET", "data")["conversations"]
    assert gone["id"] not in list_ids(e)
    assert {c["id"]: c["updatedAt"] for c in left} == \
        {c["id"]: c["updatedAt"] for c in convs if c["id"] != gone["id"]}
    stats = e.json("GET", "/conversations/stats")["conversationCount"]
    assert sum(stats.values()) == len(convs) - 1
    # GDPR erasure through the API: the contact and all its conversations.
    owner = next(c for c in e.admin("GET", "data")["contacts"]
                 if sum(v["contactId"] == c["id"] for v in left) >= 1)
    email = owner["attributes"]["email"]
    theirs = [v["id"] for v in left if v["contactId"] == owner["id"]]
    reply = e.json("POST", "/gdpr/delete", {"email": email.upper()})
    assert reply == {"data": {"message": "Your delete is processing"}}
    e.json("GET", f"/contacts/{owner['id']}", expect=404)
    assert e.json("GET", "/contacts?email=" + urllib.parse.quote(email))["data"] == []
    for cid in theirs:
        e.json("GET", f"/conversations/{cid}", expect=404)
    assert not set(theirs) & set(list_ids(e))
    assert email.encode() not in json.dumps(e.admin("GET", "data")).encode()
    e.json("POST", "/gdpr/delete", {"email": "not an email"}, expect=400)
    # Users and playbooks.
    user = data["users"][-1]
    e.admin("POST", "mutate", {"op": "delete_user", "id": user["id"]})
    e.json("GET", f"/users/{user['id']}", expect=404)
    assert user["id"] not in [u["id"] for u in e.json("GET", "/users/list")["data"]]
    pb = data["playbooks"][0]
    e.admin("POST", "mutate", {"op": "delete_playbook", "id": pb["id"]})
    assert pb["id"] not in [p["id"] for p in e.json("GET", "/playbooks/list")]
    assert pb["id"] not in [p["playbookId"] for p in e.json("GET", "/playbooks/clp")]
    e.json("POST", "/_admin/mutate", {"op": "delete_playbook", "id": pb["id"]},
           token=None, expect=404)


def test_large_dataset_starts():
    e = Emu("--conversations", "5000", "--messages", "10", "--contacts", "2000")
    try:
        stats = e.json("GET", "/conversations/stats")["conversationCount"]
        assert sum(stats.values()) == 5000
        ids, pages = walk_legacy(e, "limit=50")
        assert len(ids) == len(set(ids)) == 5000 and pages == 100
    finally:
        e.stop()


def test_log_keeps_the_order_requests_came_in(fresh):
    """A throttled answer is logged when it is all out, after a request
    that came while it trickled; "arrived" keeps the order they came in
    (the convergence check orders writes by it)."""
    import threading
    e = fresh
    _, _, whole = e.request("GET", "/users/list")
    e.admin("POST", "faults/add", {"kind": "throttle", "path": "^/users/list$",
                                   "bytes_per_second": len(whole) / 1.0})
    since = e.admin("GET", "requests")["requests"][-1]["seq"]
    slow = threading.Thread(target=e.request, args=("GET", "/users/list"))
    slow.start()
    time.sleep(0.3)
    assert e.request("GET", "/playbooks/list")[0] == 200
    slow.join()
    deadline = time.monotonic() + 10        # logged once its thread is done
    while True:
        log = e.admin("GET", "requests?since=%d" % since)["requests"]
        if len(log) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [r["path"] for r in log] == ["/playbooks/list", "/users/list"]
    assert log[0]["arrived"] > log[1]["arrived"], log
    # And when: the slow one came before the other, was logged after it.
    assert log[1]["arrived_time"] < log[0]["arrived_time"], log
    assert log[1]["arrived_time"] <= log[1]["time"] - 0.5, log
