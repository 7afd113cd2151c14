# SPDX-License-Identifier: MIT
"""What an OAuth grant carries (client secret, refresh token, authorization
code) shows nowhere when /oauth2/token answers with an error page quoting
the request: not on driftctl login's stderr, not in a mount's log or
.driftfs/errors; and a token a 401 refused stays redacted from the answer
to the retry with a fresh one."""
import urllib.parse

# Characters a form percent-encodes, so its echo differs from the value.
SECRET = "s3c/ret+v=1&ok"
ECHO_FORM = "bad request: {body}"
ECHO_JSON = ('{"message":"grant {form:grant_type} with secret '
             '{form:client_secret}, code {form:code}, refresh token '
             '{form:refresh_token} is invalid"}')


def encoded(s):
    return urllib.parse.quote(s, safe="-._~")


def test_login_error_shows_no_grant_secret(ctl, emulator):
    ctl.secrets.update((SECRET, encoded(SECRET), "valid-code"))
    for body, shown in ((ECHO_FORM, "client_secret=***&code=***"),
                        (ECHO_JSON, "with secret ***, code ***, refresh")):
        emulator.add_fault(kind="echo", path="^/oauth2/token$", body=body)
        p = ctl.run("login", "--client-id", "my-app", input=b"valid-code\n",
                    env={"DRIFT_CLIENT_SECRET": SECRET})
        err = p.stderr.decode()
        assert p.returncode == 2, err
        # The echo arrived (the test provoked what it meant to) ...
        assert "HTTP 400" in err and shown in err, err
        # ... and Ctl.run checked that no secret is on stderr.


def test_mount_refresh_error_shows_no_grant_secret(ctl, emulator, mounts,
                                                  tmp_path):
    ctl.login_oauth(secret=SECRET)
    creds = ctl.creds()
    secrets = (SECRET, encoded(SECRET), creds["refresh_token"],
               encoded(creds["refresh_token"]))
    m = mounts(emulator.url, str(tmp_path / "m"), env={"DRIFT_TOKEN": ""},
               opts=["credentials=" + ctl.credentials])
    passes = int(m.status()["sync_passes"])
    emulator.admin("POST", "tokens/expire", {})
    # One page quoting the form as sent and its fields decoded.
    emulator.add_fault(kind="echo", path="^/oauth2/token$",
                       body=ECHO_FORM + " / " + ECHO_JSON)
    try:
        m.ctl("sync")       # waits for the pass, and fails with it
    except OSError:
        pass
    m.wait_synced(passes=passes + 1)
    errors = m.read(".driftfs", "errors").decode()
    log = m.logtext()
    assert "client_secret=***&refresh_token=***" in errors, errors
    assert "with secret ***, code , refresh token *** is" in errors, errors
    assert "could not be refreshed" in log and "client_secret=***" in log
    for s in secrets:
        assert s not in errors, s
        assert s not in log, s


def test_refused_token_redacted_from_the_retry(ctl, emulator):
    ctl.login_oauth()
    old = ctl.creds()["access_token"]
    emulator.admin("POST", "tokens/expire", {})
    # The first try meets the expiry (401); the retry, with a fresh token,
    # gets an answer quoting the refused one.
    emulator.add_fault(kind="body", status=422, skip=1, path="^/users/list$",
                       body='{"error":{"type":"validation_error","message":'
                            '"token %s was revoked"}}' % old)
    p = ctl.run("api", "/users/list")
    err = p.stderr.decode()
    assert p.returncode == 4, err
    assert "token *** was revoked" in err, err
    assert old not in err
    ctl.secrets.update((ctl.creds()["access_token"],
                        ctl.creds()["refresh_token"]))
