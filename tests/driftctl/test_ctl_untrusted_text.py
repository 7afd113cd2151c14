# SPDX-License-Identifier: MIT
"""driftctl prints no API text that could drive a terminal: an API error
message in `api` and `report` failures, `status` lines, report cells; and it
redacts the token from an error text before cutting it."""
import json
import os
import pty
import subprocess

from helpers import NASTY, TOKEN, assert_inert


def poisoned_error(status=422, message="refused" + NASTY + " here"):
    return dict(kind="body", status=status, body=json.dumps(
        {"error": {"type": "validation_error", "message": message}}))


def test_api_error_message_sanitised(ctl_token, emulator):
    ctl = ctl_token
    fault = poisoned_error()
    emulator.add_fault(path="^/users/list$", **fault)
    p = ctl.run("api", "/users/list")
    assert p.returncode == 4
    err = p.stderr.decode()
    assert "HTTP 422: validation_error: refused here" in err, err
    assert_inert("driftctl api's stderr", err)
    # Into a pipe, the body is the API's, byte for byte (like curl).
    assert p.stdout == fault["body"].encode()


def test_api_error_redacted_before_cut(ctl_token, emulator):
    """The token straddles byte 255 of the error text, where it is cut."""
    ctl = ctl_token
    head = "validation_error: "
    pad = "x" * (250 - len(head))
    emulator.add_fault(path="^/users/list$",
                       **poisoned_error(message=pad + TOKEN + " was sent"))
    p = ctl.run("api", "/users/list")
    err = p.stderr.decode()
    assert "HTTP 422: " + head + pad + "***" in err, err
    assert TOKEN[:5] not in err


def test_status_and_report_sanitised(ctl_token, emulator):
    ctl = ctl_token
    # status: the API's answer to token_info, on stdout.
    emulator.add_fault(path="^/app/token_info$", **poisoned_error())
    p = ctl.run("status")
    out = p.stdout.decode()
    assert "account: unknown (HTTP error: validation_error: refused here)" \
        in out, out
    assert_inert("driftctl status", out)
    # report: a failure on stderr, then string cells in CSV and JSON.
    emulator.add_fault(path="^/reports/conversations$", method="POST",
                       **poisoned_error())
    p = ctl.run("report", "--metric", "a")
    assert p.returncode == 4
    assert "validation_error: refused here" in p.stderr.decode()
    assert_inert("driftctl report's stderr", p.stderr)
    answer = {"data": [{"conversationId": 1,
                        "metrics": ["cell" + NASTY + " end"]}]}
    for fmt in ("csv", "json"):
        emulator.add_fault(kind="body", status=200, method="POST",
                           path="^/reports/conversations$",
                           body=json.dumps(answer))
        p = ctl.run("report", "--metric", "a", "--format", fmt)
        assert p.returncode == 0, p.stderr
        if fmt == "csv":
            assert p.stdout.decode() == "conversationId,a\n1,cell end\n"
        else:
            # Escaped, not removed: the JSON value is the API's.
            assert_inert("the JSON report", p.stdout, remnants=())
            assert json.loads(p.stdout) == answer


def test_api_body_on_a_terminal_sanitised(ctl_token, emulator):
    """Into a pipe the body is the API's bytes; on a terminal it goes
    through the sanitiser."""
    ctl = ctl_token
    body = json.dumps({"data": "x"}) + NASTY + "\n"
    emulator.add_fault(kind="body", status=200, path="^/users/list$",
                       body=body)
    master, slave = pty.openpty()
    try:
        p = subprocess.run(ctl.argv("api", "/users/list"), stdout=slave,
                           stderr=subprocess.PIPE, env=ctl.env, timeout=60)
        os.close(slave)
        slave = -1
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:         # EIO: the other side is closed
                break
            if not chunk:
                break
            out += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert p.returncode == 0, p.stderr
    text = out.decode().replace("\r\n", "\n")
    assert text == '{"data": "x"}\n', repr(text)
    assert_inert("driftctl api on a terminal", text)
