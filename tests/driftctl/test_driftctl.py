# SPDX-License-Identifier: MIT
"""driftctl against the emulator: login (install token and OAuth), token
expiry and refresh (alone and shared with a mount), sync (interrupted, and
beside a mount), status, api and report (with the 60-a-minute limit)."""
import json
import os
import pty
import re
import select
import signal
import stat
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest

from helpers import TOKEN

ORG_ID = 1351205


def expected_counts(data):
    return {
        "conversations": len(data["conversations"]),
        "messages": sum(len(v) for v in data["messages"].values()),
        "users": len(data["users"]),
        "attachments": len(data["attachments"]),
        "playbooks": len(data["playbooks"]),
        "accounts": sum(1 for a in data["accounts"] if not a.get("deleted")),
    }


def direct_report(emulator, body):
    """The report as the emulator answers it, without driftctl."""
    req = urllib.request.Request(emulator.url + "/reports/conversations",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": "Bearer " + TOKEN,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def requests_for(emulator, endpoint, since=0):
    return [r for r in emulator.requests()
            if r["endpoint"] == endpoint and r["seq"] > since]


def last_seq(emulator):
    reqs = emulator.requests()
    return reqs[-1]["seq"] if reqs else 0


def integrity_ok(ctl):
    assert ctl.sql("PRAGMA integrity_check") == [("ok",)]


# ----------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------

def test_help_version_and_usage_errors(ctl):
    p = ctl.run("--help")
    assert p.returncode == 0
    out = p.stdout.decode()
    for cmd in ("login", "sync", "status", "api", "report", "exit status"):
        assert cmd in out
    for cmd in ("login", "sync", "status", "api", "report"):
        for args in ((cmd, "--help"), ("--help", cmd), (cmd, "-h")):
            p = ctl.run(*args)
            assert p.returncode == 0, args
            assert p.stdout.decode().startswith("usage: driftctl " + cmd), args
    p = ctl.run("--version")
    assert p.returncode == 0 and p.stdout.startswith(b"driftctl ")

    p = subprocess.run([ctl.argv()[0]], capture_output=True, env=ctl.env)
    assert p.returncode == 1 and b"usage: driftctl" in p.stderr
    assert ctl.run("frobnicate").returncode == 1
    assert ctl.run("sync", "--bogus").returncode == 1
    assert ctl.run("--rate", "fast", "status").returncode == 1
    assert ctl.run("api").returncode == 1
    # Secrets never on the command line.
    p = ctl.run("login", "--client-id", "x", "--client-secret", "s3")
    assert p.returncode == 1 and b"DRIFT_CLIENT_SECRET" in p.stderr
    p = ctl.run("api", "/users/list", "-H", "Authorization: Bearer x")
    assert p.returncode == 1 and b"Authorization" in p.stderr
    assert not os.path.exists(ctl.credentials)


def test_config_file_and_option_spellings(ctl_token, emulator):
    ctl = ctl_token
    conf = os.path.join(ctl.config, "driftfs", "config")
    with open(conf, "w") as f:
        f.write("# driftctl reads the same file as driftfs\n"
                "api_url = %s\nrate = 50\ntimeout = 5\n" % emulator.url)
    bare = [ctl.argv()[0]]
    p = subprocess.run(bare + ["api", "/users/list"], capture_output=True,
                       env=ctl.env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert len(json.loads(p.stdout)["data"]) == len(emulator.data()["users"])
    # The command line wins over the file, in either spelling, anywhere.
    for args in (["--api_url", "http://127.0.0.1:9", "api", "/users/list"],
                 ["api", "/users/list", "--api-url=http://127.0.0.1:9"]):
        p = subprocess.run(bare + ["--timeout", "1"] + args, capture_output=True,
                           env=ctl.env, timeout=60)
        assert p.returncode == 3, (args, p.stderr)
    p = subprocess.run(bare + ["status"], capture_output=True, env=ctl.env, timeout=60)
    assert b"rate_limit: 50.0 req/s (capped)" in p.stdout
    # A bad line stops driftctl and names the file and line.
    with open(conf, "a") as f:
        f.write("colour = blue\n")
    p = subprocess.run(bare + ["status"], capture_output=True, env=ctl.env, timeout=60)
    assert p.returncode == 1 and b"config:5: unknown option 'colour'" in p.stderr
    # A client secret in a file others can read is refused.
    with open(conf, "w") as f:
        f.write("client_id = cfg-app\nclient_secret = from-config\n")
    ctl.secrets.add("from-config")
    os.chmod(conf, 0o644)
    p = ctl.run("login", input=b"valid-code\n")
    assert p.returncode == 1 and b"chmod 600" in p.stderr
    os.chmod(conf, 0o600)
    p = ctl.run("login", input=b"valid-code\n")
    assert p.returncode == 0, p.stderr
    assert ctl.creds()["client_id"] == "cfg-app"
    assert ctl.creds()["client_secret"] == "from-config"
    ctl.secrets.add(ctl.creds()["access_token"])


def test_status_offline_without_credentials(ctl):
    p, st = ctl.status("--offline")
    assert p.returncode == 0, p.stderr
    assert st["credentials"] == "not read (offline)"
    assert st["account"] == "not checked (offline)"
    assert "empty" in st["cache"]
    assert st["mount"] == "none"


# ----------------------------------------------------------------------
# login and tokens
# ----------------------------------------------------------------------

def test_login_token_stdin(ctl, emulator):
    p = ctl.login_token()
    assert b"org %d" % ORG_ID in p.stderr
    st = os.stat(ctl.credentials)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(ctl.credentials)).st_mode) == 0o700
    assert ctl.creds() == {"access_token": TOKEN, "org_id": str(ORG_ID)}
    assert [r["method"] for r in requests_for(emulator, "POST /app/token_info")] == ["POST"]

    p = ctl.run("api", "/users/list")
    assert p.returncode == 0, p.stderr
    assert [u["id"] for u in json.loads(p.stdout)["data"]] == \
        [u["id"] for u in emulator.data()["users"]]


def test_wrong_token_is_refused_with_exit_2(ctl, emulator):
    ctl.secrets.add("not-a-token")
    p = ctl.run("login", "--token-stdin", input=b"not-a-token\n")
    assert p.returncode == 2
    assert b"refused this token" in p.stderr and b"nothing was stored" in p.stderr
    assert not os.path.exists(ctl.credentials)

    # Stored unchecked, every command that needs it fails the same way.
    p = ctl.run("login", "--token-stdin", "--no-verify", input=b"not-a-token\n")
    assert p.returncode == 0
    p = ctl.run("api", "/users/list")
    assert p.returncode == 2
    assert b"driftctl login" in p.stderr
    assert json.loads(p.stdout)["error"]["type"] == "authentication_error"
    p = ctl.run("sync")
    assert p.returncode == 2 and b"driftctl login" in p.stderr
    p, st = ctl.status()
    assert p.returncode == 2
    assert st["account"].startswith("unknown (the token was refused")
    p = ctl.run("report", "--metric", "createdAt")
    assert p.returncode == 2

    # DRIFT_TOKEN is a fixed token: the message names it.
    p = ctl.run("api", "/users/list", env={"DRIFT_TOKEN": "not-a-token"})
    assert p.returncode == 2 and b"DRIFT_TOKEN" in p.stderr
    # A credentials file others can read is refused.
    os.chmod(ctl.credentials, 0o644)
    p = ctl.run("api", "/users/list")
    assert p.returncode == 2 and b"chmod 600" in p.stderr


def test_oauth_login(ctl, emulator):
    ctl.secrets.add("s3cret-value")
    before = time.time()
    p = ctl.run("login", "--client-id", "my-app", "--redirect-uri",
                "https://example.com/cb", input=b"valid-code\n",
                env={"DRIFT_CLIENT_SECRET": "s3cret-value"})
    assert p.returncode == 0, p.stderr
    assert b"org %d" % ORG_ID in p.stderr
    url = urllib.parse.urlsplit(p.stdout.decode().strip())
    assert (url.scheme, url.netloc, url.path) == ("https", "dev.drift.com", "/authorize")
    q = urllib.parse.parse_qs(url.query)
    assert q["response_type"] == ["code"]
    assert q["client_id"] == ["my-app"]
    assert q["redirect_uri"] == ["https://example.com/cb"]
    assert re.fullmatch(r"[0-9a-f]{32}", q["state"][0])

    creds = ctl.creds()
    assert creds["access_token"].startswith("at-")
    assert creds["refresh_token"].startswith("rt-")
    assert abs(int(creds["expires_at"]) - (before + 7200)) < 60
    assert creds["client_id"] == "my-app"
    assert creds["client_secret"] == "s3cret-value"
    assert stat.S_IMODE(os.stat(ctl.credentials).st_mode) == 0o600
    ctl.secrets.update((creds["access_token"], creds["refresh_token"]))

    (tok,) = requests_for(emulator, "POST /oauth2/token")
    form = urllib.parse.parse_qs(tok["body"])
    assert form == {"grant_type": ["authorization_code"], "client_id": ["my-app"],
                    "client_secret": ["s3cret-value"], "code": ["valid-code"],
                    "redirect_uri": ["https://example.com/cb"]}
    p = ctl.run("api", "/users/list")
    assert p.returncode == 0, p.stderr


def test_oauth_login_secret_stdin_and_pasted_address(ctl):
    ctl.secrets.add("sec-from-stdin")

    def login(answer):
        proc = ctl.popen("login", "--client-id", "app", "--client-secret-stdin",
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
        proc.stdin.write(b"sec-from-stdin\n")
        proc.stdin.flush()
        url = proc.stdout.readline().decode()
        state = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["state"][0]
        out, err = proc.communicate(answer(state).encode(), timeout=60)
        ctl.check_output(out, err)
        return proc.returncode, err

    rc, err = login(lambda s: "https://example.com/cb?code=valid-code&state=%s\n" % s)
    assert rc == 0, err
    assert ctl.creds()["client_secret"] == "sec-from-stdin"
    ctl.secrets.add(ctl.creds()["access_token"])
    os.unlink(ctl.credentials)

    # A redirect that is not this login's is refused.
    rc, err = login(lambda s: "https://example.com/cb?code=valid-code&state=%s\n"
                    % ("0" * 32))
    assert rc == 2 and b"state" in err
    assert not os.path.exists(ctl.credentials)


def test_oauth_login_failures(ctl):
    ctl.secrets.add("s3")
    p = ctl.run("login", "--client-id", "app", input=b"bogus-code\n",
                env={"DRIFT_CLIENT_SECRET": "s3"})
    assert p.returncode == 2
    assert b"refused the code" in p.stderr and b"invalid_grant" in p.stderr
    assert not os.path.exists(ctl.credentials)
    p = ctl.run("login", input=b"valid-code\n", env={"DRIFT_CLIENT_SECRET": "s3"})
    assert p.returncode == 1 and b"client id" in p.stderr
    p = ctl.run("login", "--client-id", "app", input=b"valid-code\n")
    assert p.returncode == 1 and b"client secret" in p.stderr


def test_refresh_on_401(ctl, emulator):
    ctl.login_oauth()
    old = ctl.creds()
    seq = last_seq(emulator)
    assert emulator.admin("POST", "tokens/expire", {})["ok"]

    p = ctl.run("api", "/users/list")
    assert p.returncode == 0, p.stderr
    assert len(json.loads(p.stdout)["data"]) == len(emulator.data()["users"])
    new = ctl.creds()
    assert new["access_token"] != old["access_token"]
    assert new["refresh_token"] != old["refresh_token"]
    assert (new["client_id"], new["client_secret"]) == ("my-app", "s3cret-value")
    assert stat.S_IMODE(os.stat(ctl.credentials).st_mode) == 0o600
    ctl.secrets.update((new["access_token"], new["refresh_token"]))

    seen = [(r["endpoint"], r["status"]) for r in emulator.requests() if r["seq"] > seq]
    assert seen == [("GET /users/list", 401), ("POST /oauth2/token", 200),
                    ("GET /users/list", 200)]
    grant = urllib.parse.parse_qs(requests_for(emulator, "POST /oauth2/token", seq)[0]["body"])
    assert grant["grant_type"] == ["refresh_token"]
    assert grant["refresh_token"] == [old["refresh_token"]]

    # The new token is used from the file: no refresh the next time.
    seq = last_seq(emulator)
    assert ctl.run("api", "/users/list").returncode == 0
    assert not requests_for(emulator, "POST /oauth2/token", seq)


@pytest.mark.emulator_args("--token-ttl", "8")
def test_refresh_shortly_before_expiry(ctl, emulator):
    ctl.login_oauth()
    issued = os.stat(ctl.credentials).st_mtime
    first = ctl.creds()["access_token"]
    # Early on the token is used as it is.
    seq = last_seq(emulator)
    assert ctl.run("api", "/users/list").returncode == 0
    assert not requests_for(emulator, "POST /oauth2/token", seq)
    # Within the last quarter of its life it is refreshed before use, so
    # the API never sees the old one expire.
    time.sleep(max(0, issued + 6.5 - time.time()))
    seq = last_seq(emulator)
    p = ctl.run("api", "/users/list")
    assert p.returncode == 0, p.stderr
    seen = [(r["endpoint"], r["status"]) for r in emulator.requests() if r["seq"] > seq]
    assert seen == [("POST /oauth2/token", 200), ("GET /users/list", 200)]
    assert ctl.creds()["access_token"] != first
    ctl.secrets.add(ctl.creds()["access_token"])


def test_refused_refresh_says_what_to_run(ctl, emulator):
    ctl.login_oauth()
    creds = ctl.creds()
    creds["refresh_token"] = "rt-already-used"
    tmp = ctl.credentials + ".tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write("".join("%s = %s\n" % kv for kv in creds.items()))
    os.rename(tmp, ctl.credentials)
    emulator.admin("POST", "tokens/expire", {})

    p = ctl.run("api", "/users/list")
    assert p.returncode == 2
    err = p.stderr.decode()
    assert "could not be refreshed" in err and "invalid_grant" in err
    assert "run `driftctl login`" in err
    # One refresh attempt, not one per retry.
    assert len(requests_for(emulator, "POST /oauth2/token")) == 2  # login + 1


def test_mount_and_driftctl_share_refreshed_tokens(ctl, emulator, mounts, tmp_path):
    ctl.login_oauth()
    m = mounts(emulator.url, str(tmp_path / "m"), env={"DRIFT_TOKEN": ""},
               opts=["credentials=" + ctl.credentials])
    users = sorted(os.listdir(m.p("users")))
    grants = lambda: len(requests_for(emulator, "POST /oauth2/token"))  # noqa: E731
    assert grants() == 1

    # Expiry under a mount: its next calls refresh and go on.
    emulator.admin("POST", "tokens/expire", {})
    emulator.mutate(op="add_message", conversationId=emulator.data()["conversations"][0]["id"],
                    body="<p>after expiry one</p>", authorType="contact")
    m.ctl("sync")
    assert m.status()["last_result"] == "ok"
    assert grants() == 2
    cid = emulator.data()["conversations"][0]["id"]
    assert "after expiry one" in m.read("conversations", str(cid), "transcript.txt",
                                         mode="r")
    ctl.secrets.add(ctl.creds()["access_token"])
    ctl.secrets.add(ctl.creds()["refresh_token"])

    # driftctl reads the token the mount wrote: no refresh of its own.
    assert ctl.run("api", "/users/list").returncode == 0
    assert grants() == 2

    # Expiry again, noticed by driftctl first: the mount adopts the file
    # on its 401 instead of spending the used-up refresh token.
    emulator.admin("POST", "tokens/expire", {})
    assert ctl.run("api", "/users/list").returncode == 0
    assert grants() == 3
    ctl.secrets.add(ctl.creds()["access_token"])
    emulator.mutate(op="add_message", conversationId=cid, body="<p>after expiry two</p>",
                    authorType="contact")
    m.ctl("sync")
    assert m.status()["last_result"] == "ok"
    assert grants() == 3
    assert "after expiry two" in m.read("conversations", str(cid), "transcript.txt",
                                         mode="r")
    assert sorted(os.listdir(m.p("users"))) == users
    assert "could not be refreshed" not in m.logtext()
    assert all(r["status"] != 400 for r in requests_for(emulator, "POST /oauth2/token"))


def test_write_survives_a_refresh_that_fails_for_now(ctl, emulator, mounts, tmp_path):
    """The token expired under a mount and the token endpoint answered 503:
    the call ended as a 401, the outbox took that for a refusal and
    dropped the reply, and close() failed with EACCES. A refresh that fails
    for now is a transient failure: the reply stays queued, and goes once
    a token can be had."""
    from helpers import wait_for
    ctl.login_oauth()
    m = mounts(emulator.url, str(tmp_path / "m"), env={"DRIFT_TOKEN": ""},
               opts=["credentials=" + ctl.credentials])
    cid = emulator.data()["conversations"][3]["id"]
    emulator.admin("POST", "tokens/expire", {})
    emulator.add_fault(kind="status", status=503, count=10000, method="POST",
                       path=r"^/oauth2/token$")
    seq = last_seq(emulator)
    with open(m.p("conversations", str(cid), "reply"), "w") as f:
        f.write("sent once a token can be had\n")
    posts = requests_for(emulator, "POST /conversations/{id}/messages", seq)
    assert posts and all(r["status"] == 401 for r in posts)
    assert len(os.listdir(m.p(".driftfs", "outbox"))) == 1
    emulator.clear_faults()
    wait_for(lambda: not os.listdir(m.p(".driftfs", "outbox")), 60, "the outbox")
    ctl.secrets.add(ctl.creds()["access_token"])
    ctl.secrets.add(ctl.creds()["refresh_token"])
    bodies = [x["body"] for x in emulator.data()["messages"][str(cid)]]
    assert bodies.count("sent once a token can be had") == 1


# ----------------------------------------------------------------------
# sync and status
# ----------------------------------------------------------------------

def test_sync_then_status(ctl_token, emulator):
    ctl = ctl_token
    p = ctl.run("sync")
    assert p.returncode == 0, p.stderr
    assert b"sync: done" in p.stderr
    assert b"\r" not in p.stderr and b"\x1b" not in p.stderr
    integrity_ok(ctl)

    data = emulator.data()
    p, st = ctl.status()
    assert p.returncode == 0, p.stderr
    for k, v in expected_counts(data).items():
        assert int(st[k]) == v, k
    in_convs = {c["contactId"] for c in data["conversations"]}
    assert int(st["contacts"]) >= len(in_convs)
    assert st["outbox"] == "0"
    assert st["last_sync"] != "never"
    assert st["account"] == "org %d" % ORG_ID
    assert st["mount"] == "none"
    assert st["report_calls"].startswith("0 ")
    assert st["credentials"].startswith(ctl.credentials)
    assert st["cache"].startswith(ctl.account_dir())
    assert stat.S_IMODE(os.stat(ctl.db_path()).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(ctl.account_dir()).st_mode) == 0o700

    # A second pass fetches nothing that did not change.
    seq = last_seq(emulator)
    # On a pipe the phase is read once a second (the first time as the
    # pass starts, maybe before it): the users list answers after 1.5 s so
    # that a reading falls in its phase, however fast the rest is.
    emulator.add_fault(kind="stall", seconds=1.5, path="^/users/list$")
    p = ctl.run("sync", "--progress")
    assert p.returncode == 0, p.stderr
    assert b"sync: users" in p.stderr      # plain progress lines on a pipe
    again = [r["endpoint"] for r in emulator.requests() if r["seq"] > seq]
    assert "GET /conversations/{id}" not in again
    assert "GET /conversations/{id}/messages" not in again


@pytest.mark.emulator_args("--latency", "20")
def test_sync_progress_bar_on_a_terminal(ctl_token):
    ctl = ctl_token
    # The governor's adaptive pace, as for a user: the bar with its rate
    # and ETA needs the phase to last (at 400 requests/s it can end first).
    ctl.rate = None
    master, slave = pty.openpty()
    proc = ctl.popen("sync", stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        r, _, _ = select.select([master], [], [], 60)
        if not r:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    proc.wait(60)
    os.close(master)
    assert proc.returncode == 0, out
    text = out.decode("utf-8", "replace")
    assert "\r\x1b[K" in text
    bars = re.findall(r"fetching conversations \[[#-]+\] (\d+)/(\d+) [\d.]+/s ETA \d+:\d\d",
                      text)
    assert bars, text
    assert all(int(total) == 60 for _, total in bars)
    assert "sync: done" in text


@pytest.mark.emulator_args("--latency", "60")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sync_interrupted_then_rerun(ctl_token, emulator, sig):
    ctl = ctl_token
    proc = ctl.popen("sync", stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def stored():
        try:
            return ctl.sql("SELECT count(*) FROM conversations")[0][0]
        except Exception:
            return 0
    deadline = time.monotonic() + 60
    while stored() < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the sync ended before it could be interrupted"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    ctl.check_output(out, err)
    assert proc.returncode == -sig
    assert b"sync interrupted" in err
    integrity_ok(ctl)
    total = len(emulator.data()["conversations"])
    assert stored() < total

    emulator.faults(latency_ms=0)
    p = ctl.run("sync")
    assert p.returncode == 0, p.stderr
    integrity_ok(ctl)
    p, st = ctl.status()
    for k, v in expected_counts(emulator.data()).items():
        assert int(st[k]) == v, k
    # Every conversation holds all its messages.
    data = emulator.data()
    per_conv = dict(ctl.sql("SELECT conversation_id, count(*) FROM messages"
                            " GROUP BY conversation_id"))
    for cid, msgs in data["messages"].items():
        assert per_conv.get(int(cid), 0) == len(msgs), cid


def sync_through_a_mount(ctl, emulator, mounts, tmp_path, text, opts=()):
    """Mounts ctl's cache, adds a message saying text, and runs driftctl
    sync: the mount must do the pass, once, and its reads show the message
    at once. Returns the mount, the conversation id and driftctl's run."""
    m = mounts(emulator.url, str(tmp_path / "m"), opts=list(opts),
               cache_dir=os.path.join(ctl.cache, "driftfs"))
    cid = emulator.data()["conversations"][-1]["id"]
    before = m.read("conversations", str(cid), "transcript.txt", mode="r")
    emulator.mutate(op="add_message", conversationId=cid,
                    body="<p>%s</p>" % text, authorType="contact")
    seq = last_seq(emulator)
    p = ctl.run("sync")
    assert p.returncode == 0, p.stderr
    assert b"done by the mount" in p.stderr
    fetched = [r for r in emulator.requests() if r["seq"] > seq and
               r["path"] == "/conversations/%d" % cid]
    assert len(fetched) == 1
    after = m.read("conversations", str(cid), "transcript.txt", mode="r")
    assert after.startswith(before) and text in after
    return m, cid, p


def test_sync_asks_a_running_mount(ctl_token, emulator, mounts, tmp_path):
    ctl = ctl_token
    m, cid, p = sync_through_a_mount(ctl, emulator, mounts, tmp_path,
                                     "seen through driftctl sync")
    assert b"asking it to sync" in p.stderr
    integrity_ok(ctl)

    p, st = ctl.status()
    assert p.returncode == 0
    assert st["mount"].startswith(os.path.realpath(m.path) + " (pid %d)" % m.proc.pid)
    assert st["mount_state"] == "online"
    assert int(st["conversations"]) == len(emulator.data()["conversations"])

    # Several at once: two driftctl syncs, a sync through ctl, and readers.
    results = []

    def run_sync():
        results.append(ctl.run("sync").returncode)

    def run_ctl():
        # In a process of its own: a thread of ours holding the ctl file
        # open while another forks would hand the child a copy of the
        # descriptor, whose close on exec the mount gets as a flush.
        results.append(subprocess.run(["sh", "-c", 'echo sync > "$0"',
                                       m.p(".driftfs", "ctl")],
                                      timeout=600).returncode)
    threads = [threading.Thread(target=f) for f in (run_sync, run_sync, run_ctl)]
    for t in threads:
        t.start()
    grep = subprocess.run(["grep", "-rl", "seen through driftctl sync",
                           m.p("conversations")], capture_output=True, timeout=120)
    for t in threads:
        t.join(120)
    assert results == [0, 0, 0]
    assert grep.returncode == 0
    assert m.p("conversations", str(cid), "transcript.txt") in grep.stdout.decode()
    integrity_ok(ctl)
    data = emulator.data()
    for conv in data["conversations"][:10]:
        assert json.loads(m.read("conversations", str(conv["id"]),
                                 "conversation.json")) == conv


def test_sync_signals_a_read_only_mount(ctl_token, emulator, mounts, tmp_path):
    """A read-only mount's ctl cannot be written: driftctl signals it and
    waits on its status for the pass."""
    m, _, p = sync_through_a_mount(ctl_token, emulator, mounts, tmp_path,
                                   "synced by signal", opts=["ro"])
    assert b"read-only; signalling it" in p.stderr
    assert int(m.status()["sync_passes"]) == 2
    # A failing pass fails the command. One failing list is enough: a 500
    # on every path had every step of the pass (and each contact of its
    # refresh) wait out its retries, 40 s.
    emulator.add_fault(kind="status", status=500, count=1000,
                       path="^/users/list$")
    p = ctl_token.run("sync")
    emulator.clear_faults()
    assert p.returncode != 0
    assert b"could not sync" in p.stderr


def test_status_lists_the_outbox(ctl_token, emulator, mounts, tmp_path):
    ctl = ctl_token
    m = mounts(emulator.url, str(tmp_path / "m"),
               cache_dir=os.path.join(ctl.cache, "driftfs"))
    cid = emulator.data()["conversations"][3]["id"]
    emulator.add_fault(kind="status", status=503, count=1000, method="POST",
                       path="/messages$")
    with open(m.p("conversations", str(cid), "reply"), "w") as f:
        f.write("waiting in the outbox\n")
    p = ctl.run("status")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()
    assert "outbox: 1" in lines
    (entry,) = [x for x in lines if x.startswith("outbox_entry: ")]
    assert "conversations/%d/reply: POST /conversations/%d/messages" % (cid, cid) in entry
    assert "HTTP 503" in entry
    emulator.clear_faults()


def test_sync_ignores_a_dead_mount_note(ctl_token, emulator):
    ctl = ctl_token
    os.makedirs(ctl.org_dir(ORG_ID), mode=0o700, exist_ok=True)
    with open(os.path.join(ctl.org_dir(ORG_ID), "mount"), "w") as f:
        f.write("999999\n/nonexistent/mnt\n")
    p = ctl.run("sync")
    assert p.returncode == 0, p.stderr
    assert b"asking it" not in p.stderr
    p, st = ctl.status()
    assert st["mount"] == "none"
    assert int(st["conversations"]) == len(emulator.data()["conversations"])


# ----------------------------------------------------------------------
# api
# ----------------------------------------------------------------------

def test_api_calls(ctl_token, emulator, tmp_path):
    ctl = ctl_token
    # GET with queries, escaped.
    p = ctl.run("api", "/contacts", "-q", "email=shared@acme.example", "-q", "limit=1")
    assert p.returncode == 0, p.stderr
    found = json.loads(p.stdout)["data"]
    assert len(found) == 1 and found[0]["attributes"]["email"] == "shared@acme.example"
    (req,) = requests_for(emulator, "GET /contacts")
    assert req["query"] == "email=shared%40acme.example&limit=1"

    # POST with -d, -d @file and -d @- (stdin).
    bodies = [{"attributes": {"email": "dc-%d@example.com" % i, "name": "DC %d" % i}}
              for i in range(3)]
    path = tmp_path / "contact.json"
    path.write_text(json.dumps(bodies[1]))
    runs = [("-d", json.dumps(bodies[0]), None),
            ("-d", "@" + str(path), None),
            ("-d", "@-", json.dumps(bodies[2]).encode())]
    for (flag, value, stdin), body in zip(runs, bodies):
        p = ctl.run("api", "/contacts", flag, value, "-H", "X-Trace: driftctl",
                    input=stdin)
        assert p.returncode == 0, p.stderr
        assert json.loads(p.stdout)["data"]["attributes"]["email"] == \
            body["attributes"]["email"]
    posts = [r for r in requests_for(emulator, "POST /contacts")]
    assert [json.loads(r["body"]) for r in posts] == bodies
    emails = {c["attributes"].get("email") for c in emulator.data()["contacts"]}
    assert {"dc-0@example.com", "dc-1@example.com", "dc-2@example.com"} <= emails

    # -X PATCH.
    new_id = json.loads(p.stdout)["data"]["id"]
    p = ctl.run("api", "-X", "patch", "/contacts/%d" % new_id,
                "-d", '{"attributes":{"title":"CTO"}}')
    assert p.returncode == 0, p.stderr
    contact = [c for c in emulator.data()["contacts"] if c["id"] == new_id][0]
    assert contact["attributes"]["title"] == "CTO"

    # A full URL under the API works; any other host is refused.
    p = ctl.run("api", emulator.url + "/users/list")
    assert p.returncode == 0
    p = ctl.run("api", "https://evil.example/users/list")
    assert p.returncode == 1
    assert ctl.run("api", "/users/list", "-H", "no colon").returncode == 1


def test_api_exit_status_follows_http_status(ctl_token, emulator):
    ctl = ctl_token
    p = ctl.run("api", "/contacts/1")
    assert p.returncode == 4
    assert json.loads(p.stdout)["error"]["type"] == "not_found"
    assert b"HTTP 404" in p.stderr
    p = ctl.run("api", "/contacts")            # no email: 400
    assert p.returncode == 4 and b"HTTP 400" in p.stderr

    # 5xx: GETs are retried (5 tries), then 3.
    emulator.add_fault(kind="status", status=500, count=10, path="^/users/list$")
    p = ctl.run("api", "/users/list")
    assert p.returncode == 3 and b"HTTP 500" in p.stderr
    assert len(requests_for(emulator, "GET /users/list")) == 5
    emulator.clear_faults()
    # One 503 is retried away.
    emulator.add_fault(kind="status", status=503, count=1, path="^/users/list$")
    assert ctl.run("api", "/users/list").returncode == 0
    # POSTs are not resent after a 5xx: the API may have acted.
    seq = last_seq(emulator)
    emulator.add_fault(kind="status", status=503, count=1, path="^/contacts$",
                       method="POST")
    p = ctl.run("api", "/contacts", "-d", '{"attributes":{"email":"once@example.com"}}')
    assert p.returncode == 3
    assert len(requests_for(emulator, "POST /contacts", seq)) == 1
    # 429s are waited out (Retry-After), then the call succeeds.
    emulator.add_fault(kind="burst429", count=2, retry_after=1, path="^/users/list$")
    t = time.monotonic()
    assert ctl.run("api", "/users/list").returncode == 0
    assert time.monotonic() - t >= 1.0
    # 429 until the deadline: 5.
    emulator.add_fault(kind="burst429", count=50, retry_after=1, path="^/users/list$")
    p = ctl.run("--timeout", "1", "api", "/users/list")
    assert p.returncode == 5, p.stderr
    emulator.clear_faults()

    assert ctl.run("--offline", "api", "/users/list").returncode == 3
    p = subprocess.run([ctl.argv()[0], "--api-url", "http://127.0.0.1:9", "--timeout",
                        "2", "api", "/users/list"], capture_output=True,
                       env=ctl.env_with({"DRIFT_TOKEN": TOKEN}), timeout=120)
    assert p.returncode == 3 and b"api: GET /users/list" in p.stderr


# ----------------------------------------------------------------------
# report
# ----------------------------------------------------------------------

def csv_rows(answer):
    rows = []
    for row in answer["data"]:
        rows.append(",".join([str(row["conversationId"])] +
                             [str(v) for v in row["metrics"]]))
    return rows


def test_report_json_and_csv(ctl_token, emulator):
    ctl = ctl_token
    body = {"filters": [{"property": "status", "operation": "IN",
                         "values": ["closed"]}],
            "metrics": ["createdAt", "numAgentMessages"]}
    expected = direct_report(emulator, body)
    assert expected["count"] > 0
    seq = last_seq(emulator)
    p = ctl.run("report", "--filter", "status IN closed", "--metric", "createdAt",
                "--metric", "numAgentMessages")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == expected
    (sent,) = requests_for(emulator, "POST /reports/conversations", seq)
    assert json.loads(sent["body"]) == body
    closed = {c["id"] for c in emulator.data()["conversations"] if c["status"] == "closed"}
    assert {r["conversationId"] for r in expected["data"]} == closed

    p = ctl.run("report", "--filter", "status in closed", "--metric",
                "createdAt,numAgentMessages", "--format", "csv")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()
    assert lines[0] == "conversationId,createdAt,numAgentMessages"
    assert lines[1:] == csv_rows(expected)

    # Several filters, a value list, a missing metric (NaN).
    body = {"filters": [
        {"property": "updatedAt", "operation": "BETWEEN",
         "values": ["2020-01-01", "2100-01-01"]},
        {"property": "status", "operation": "IN", "values": ["open", "closed"]},
        {"property": "lastAgentId", "operation": "HAS_PROPERTY"}],
        "metrics": ["createdAt", "timeToCloseMillis"]}
    expected = direct_report(emulator, body)
    p = ctl.run("report", "-f", "updatedAt BETWEEN 2020-01-01 2100-01-01",
                "-f", "status IN open,closed", "-f", "lastAgentId HAS_PROPERTY",
                "-m", "createdAt", "-m", "timeToCloseMillis", "--format", "csv")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()
    assert lines[0] == "conversationId,createdAt,timeToCloseMillis"
    assert lines[1:] == csv_rows(expected)
    assert any(line.endswith(",NaN") for line in lines[1:])

    # Bad requests: ours (1) and the API's (4).
    assert ctl.run("report", "--metric", "createdAt", "-f", "status").returncode == 1
    assert ctl.run("report", "-f", "status IN closed").returncode == 1
    assert ctl.run("report", "-m", "x", "--format", "xml").returncode == 1
    p = ctl.run("report", "-m", "status")
    assert p.returncode == 4 and b"not a numeric property" in p.stderr


def write_calls(ctl, times_ms):
    os.makedirs(ctl.account_dir(), mode=0o700, exist_ok=True)
    with open(os.path.join(ctl.account_dir(), "report-calls"), "w") as f:
        f.write("".join("%d\n" % t for t in times_ms))


def test_report_waits_for_the_minute_limit(ctl_token, emulator):
    ctl = ctl_token
    now = int(time.time() * 1000)
    # 60 calls in the last minute, the oldest 58 s ago: the 61st waits ~2 s.
    # The other 59 are 20 s old, so they stay in the minute while status
    # runs below, however slow the build (they all aged out within 0.6 s
    # of the wait under ASan, and status counted 39).
    write_calls(ctl, [now - 58000] + [now - 20000 + i * 10 for i in range(59)])
    t = time.monotonic()
    p = ctl.run("report", "-m", "createdAt")
    took = time.monotonic() - t
    assert p.returncode == 0, p.stderr
    assert b"waiting 2 s" in p.stderr
    assert 1.5 <= took < 10
    with open(os.path.join(ctl.account_dir(), "report-calls")) as f:
        kept = [int(x) for x in f.read().split()]
    assert len(kept) == 60 and kept[-1] >= now + 1500
    # status counts those of the last minute (some may age out meanwhile).
    before = time.time() * 1000
    _, st = ctl.status()
    after = time.time() * 1000
    counted = int(st["report_calls"].split()[0])
    assert sum(t > after - 60000 for t in kept) <= counted
    assert counted <= sum(t > before - 60000 for t in kept)
    assert counted >= 50

    # --no-wait fails at once, with status 5, and sends nothing.
    now = int(time.time() * 1000)
    write_calls(ctl, [now - 30000 + i * 10 for i in range(60)])
    seq = last_seq(emulator)
    t = time.monotonic()
    p = ctl.run("report", "-m", "createdAt", "--no-wait")
    assert p.returncode == 5
    assert b"--no-wait" in p.stderr and b"60 reports in the last minute" in p.stderr
    assert re.search(rb"allowed in (29|30) s", p.stderr)
    assert time.monotonic() - t < 5
    assert not requests_for(emulator, "POST /reports/conversations", seq)


def test_report_61st_call_in_a_minute(ctl_token, emulator):
    ctl = ctl_token
    for _ in range(60):
        assert ctl.run("report", "-m", "createdAt").returncode == 0
    reports = requests_for(emulator, "POST /reports/conversations")
    assert [r["status"] for r in reports] == [200] * 60
    p = ctl.run("report", "-m", "createdAt", "--no-wait")
    assert p.returncode == 5
    assert len(requests_for(emulator, "POST /reports/conversations")) == 60

    # The API's own 429 (another client spent the minute) is waited out
    # (Retry-After), and the report still arrives.
    emulator.add_fault(kind="burst429", count=1, retry_after=1,
                       path="^/reports/conversations$")
    os.unlink(os.path.join(ctl.account_dir(), "report-calls"))
    t = time.monotonic()
    p = ctl.run("report", "-m", "createdAt")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["count"] == len(emulator.data()["conversations"])
    assert time.monotonic() - t >= 0.9
    statuses = [r["status"] for r in requests_for(emulator, "POST /reports/conversations")]
    assert statuses[60:] == [429, 200]
