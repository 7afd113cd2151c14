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


def test_sync_progress_phase_from_a_mount_sanitised(ctl_token, tmp_path):
    """`driftctl sync` beside a mount draws the mount's .driftfs/status
    phase on its progress bar: a phase with an escape sequence (the file
    is the mount's, not driftctl's) reaches the terminal without it."""
    import fcntl
    import threading
    import time

    ctl = ctl_token
    assert ctl.run("sync").returncode == 0
    mnt = tmp_path / "fake-mount"
    (mnt / ".driftfs").mkdir(parents=True)
    (mnt / ".driftfs" / "status").write_text(
        "state: online\nsyncing: yes (fetching\x1b]0;evil-title\x07 things"
        "\x1b[2J, 1/4)\n")
    ctl_fifo = mnt / ".driftfs" / "ctl"
    os.mkfifo(ctl_fifo)
    # A live mount holds a lock on the note that names it.
    note = os.path.join(ctl.org_dir(), "mount")
    with open(note, "w") as f:
        f.write("%d\n%s\n" % (os.getpid(), mnt))
    held = open(note)
    fcntl.flock(held, fcntl.LOCK_EX)

    # The write of "sync" waits, as on a mount, for the pass: the pipe is
    # full until the "mount" drains it, a few progress ticks later.
    pipe = os.open(ctl_fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        while True:
            os.write(pipe, b"x" * 4096)
    except BlockingIOError:
        pass

    def mount_side():
        time.sleep(1.5)
        try:
            while os.read(pipe, 65536):
                pass
        except BlockingIOError:
            pass
    t = threading.Thread(target=mount_side)
    t.start()
    master, slave = pty.openpty()
    try:
        proc = ctl.popen("sync", stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        proc.wait(60)
    finally:
        os.close(master)
        t.join(30)
        os.close(pipe)
        held.close()
    text = out.decode("utf-8", "replace")
    assert "fetching things [" in text, text
    # driftctl's own "\r ESC [K" redraws, and nothing else.
    shown = text.replace("\r\x1b[K", "").replace("\r\n", "\n")
    assert_inert("driftctl sync's progress bar", shown,
                 remnants=("]0;", "evil-title", "[2J"))
