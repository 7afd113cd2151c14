# SPDX-License-Identifier: MIT
"""Secrets and permissions of a running mount: the token is not in its argv
or environment, not in its log or .driftfs/errors whatever goes wrong, and
its memory is closed to other processes of the same user; mount options."""
import json
import os
import shutil
import subprocess
import time

import pytest

from helpers import VALGRIND, Emulator

SECRET = "tok-7c1e55d0-SECRET-b9a2f4"


def mount_options(m):
    """(fstype, options) of the mount in /proc/mounts."""
    target = os.path.realpath(m.path)
    with open("/proc/mounts") as f:
        for line in f:
            dev, mnt, fstype, opts = line.split()[:4]
            if mnt == target:
                return fstype, opts.split(",")
    raise AssertionError("not in /proc/mounts: %s" % target)


@pytest.fixture
def secret_emulator(tmp_path):
    emu = Emulator("--token", SECRET, workdir=str(tmp_path / "emu"))
    yield emu
    emu.stop()



def test_token_not_in_argv_environ_or_logs(secret_emulator, mounts, tmp_path):
    emu = secret_emulator
    m = mounts(emu.url, str(tmp_path), env={"DRIFT_TOKEN": SECRET})
    pid = m.proc.pid
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        assert SECRET.encode() not in f.read()
    # Under valgrind, /proc/PID/environ shows the environment valgrind
    # was started with, not the copy it hands driftfs (which driftfs
    # wipes): only the plain and sanitizer runs can check it.
    if not VALGRIND:
        with open("/proc/%d/environ" % pid, "rb") as f:
            env = f.read()
        assert SECRET.encode() not in env
        # The variable was there at exec; its value is wiped in place.
        assert b"DRIFT_TOKEN=\0" in env
        assert all(v == b"DRIFT_TOKEN=" for v in env.split(b"\0")
                   if v.startswith(b"DRIFT_TOKEN="))

    # Fail requests in every way the client reports, one sync pass each.
    echo = json.dumps({"error": {"type": "validation_error",
                                 "message": "bad Bearer %s here" % SECRET}})
    faults = [dict(kind="body", status=400, body=echo),
              dict(kind="body", status=400, body="raw " + SECRET),
              dict(kind="status", status=401),
              dict(kind="status", status=500, count=5),     # every retry
              dict(kind="malformed"),
              dict(kind="redirect", status=302,
                   location="http://127.0.0.1:9/%s{path}" % SECRET)]
    for i, fault in enumerate(faults, start=2):
        emu.clear_faults()
        emu.add_fault(**fault)
        try:
            m.ctl("sync")       # waits for the pass, and fails with it
        except OSError:
            pass
        m.wait_synced(passes=i)
    errors = m.read(".driftfs", "errors").decode()
    log = m.logtext()
    # The failures were recorded (the test provoked what it meant to) ...
    assert errors.count("bad Bearer *** here") >= 1, errors
    assert "raw ***" in errors
    assert "HTTP 401" in errors and "HTTP 500" in errors
    assert "HTTP 302: redirect to http://127.0.0.1:9/***/" in errors
    assert "refused the token in DRIFT_TOKEN" in log
    # ... and the token is in none of them.
    assert SECRET not in errors
    assert SECRET not in log


@pytest.mark.skipif(not shutil.which("setpriv"), reason="SKIP: no setpriv (util-linux)")
def test_memory_closed_to_same_user(secret_emulator, mounts, tmp_path):
    """driftfs is non-dumpable: no core file, and another process of the
    same user without CAP_SYS_PTRACE cannot open its /proc/PID/mem.

    We run as root, and root has CAP_SYS_PTRACE, so both driftfs and the
    prober run as root limited to CAP_SYS_ADMIN (enough to mount): the same
    user with the same capabilities. A dumpable process (sleep) under the
    same limit is the control: the prober can open its memory."""
    caps = ["setpriv", "--inh-caps=-all", "--bounding-set=-all,+sys_admin"]
    m = mounts(secret_emulator.url, str(tmp_path), wrapper=caps,
               env={"DRIFT_TOKEN": SECRET})
    probe = ("import os, sys\n"
             "try:\n"
             "    os.close(os.open('/proc/%s/mem', os.O_RDONLY))\n"
             "    print('open')\n"
             "except PermissionError:\n"
             "    print('denied')\n")
    control = subprocess.Popen(caps + ["sleep", "30"])
    try:
        time.sleep(0.2)
        out = subprocess.run(caps + ["python3", "-c", probe % control.pid],
                             capture_output=True, timeout=30)
        assert out.stdout.decode().strip() == "open", out
        out = subprocess.run(caps + ["python3", "-c", probe % m.proc.pid],
                             capture_output=True, timeout=30)
        assert out.stdout.decode().strip() == "denied", out
    finally:
        control.kill()
        control.wait()
    # Still a working mount.
    assert os.listdir(m.p("contacts"))


def test_mount_options(emulator, mounts, tmp_path):
    """No allow_other by default; default_permissions always, with or
    without it. The type is the one scripts/updatedb-driftfs.conf prunes."""
    a = mounts(emulator.url, str(tmp_path / "a"), wait_sync=False)
    fstype, opts = mount_options(a)
    assert fstype == "fuse.driftfs"
    assert "default_permissions" in opts and "allow_other" not in opts, opts
    b = mounts(emulator.url, str(tmp_path / "b"), opts=["allow_other"], wait_sync=False)
    fstype, opts = mount_options(b)
    assert "default_permissions" in opts and "allow_other" in opts, opts
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "..", "scripts", "updatedb-driftfs.conf")) as f:
        assert fstype in f.read()
