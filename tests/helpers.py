# SPDX-License-Identifier: MIT
"""Starting the emulator and a driftfs mount for tests, benchmarks and the demo.

Everything here cleans up after itself: a mount is unmounted (fusermount3 -u,
then -uz) and every process started is stopped by PID, even when a test fails.
"""
import glob
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EMULATOR = os.path.join(HERE, "emulator", "drift_emulator.py")
DRIFTFS = os.environ.get("DRIFTFS", os.path.join(ROOT, "build", "default", "driftfs"))
TOKEN = "demo-token"
# A command the daemon is started under, e.g. valgrind (make check-valgrind).
# Under valgrind, each daemon writes its own log (--log-file is added here)
# and any error in it counts as suspicious daemon output.
WRAPPER = shlex.split(os.environ.get("DRIFTFS_WRAPPER", ""))
VALGRIND = bool(WRAPPER) and os.path.basename(WRAPPER[0]) == "valgrind"
# How much slower the daemon runs under the wrapper (startup, exit).
SLOW = 10 if WRAPPER else 1

# Daemon output that means a bug, whatever the test asserted.
SUSPICIOUS = ("AddressSanitizer", "runtime error:", "LeakSanitizer",
              "Segmentation fault", "double free", "Assertion", "==ERROR")


def fuse_unavailable():
    """Why a mount cannot be made here, or None when it can."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse on this machine"
    if not shutil.which("fusermount3"):
        return "fusermount3 is not installed (package fuse3)"
    if not os.path.exists(DRIFTFS):
        return "driftfs is not built (%s); run make" % DRIFTFS
    return None


def wait_for(pred, timeout, what, interval=0.05):
    """Polls pred() until it is true; fails with what after timeout s."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise TimeoutError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


class Emulator:
    """A Drift API emulator process on 127.0.0.1 with its admin API.

    tls=(cert, key) serves HTTPS with that certificate; host picks another
    listen address ("::1"). The admin calls made here do not verify the
    certificate: the harness talks to its own process, and what the TLS tests
    check is driftfs's verification, not this one."""

    def __init__(self, *args, workdir=None, tls=None, host="127.0.0.1"):
        self.dir = workdir or tempfile.mkdtemp(prefix="drift-emu-")
        os.makedirs(self.dir, exist_ok=True)
        port_file = os.path.join(self.dir, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        self.log = open(os.path.join(self.dir, "emulator.log"), "wb")
        self.proc = subprocess.Popen(
            [sys.executable, EMULATOR, "--port", "0", "--port-file", port_file,
             "--quiet", "--host", host,
             *(["--tls-cert", tls[0], "--tls-key", tls[1]] if tls else []),
             *[str(a) for a in args]],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(port_file) or self.proc.poll() is not None,
                 60, "the emulator to listen")
        if self.proc.poll() is not None:
            raise RuntimeError("emulator exited: %s" % self.logtext())
        with open(port_file) as f:
            self.port = int(f.read().strip())
        self.url = "%s://%s:%d" % ("https" if tls else "http",
                                   "[%s]" % host if ":" in host else host, self.port)
        self.admin_tls = None
        if tls:
            self.admin_tls = ssl.create_default_context()
            self.admin_tls.check_hostname = False
            self.admin_tls.verify_mode = ssl.CERT_NONE

    def logtext(self):
        self.log.flush()
        with open(self.log.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def admin(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + "/_admin/" + path, data=data,
                                     method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30, context=self.admin_tls) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def data(self):
        return self.admin("GET", "data")

    def requests(self):
        return self.admin("GET", "requests")["requests"]

    def stats(self):
        return self.admin("GET", "stats")

    def total(self):
        return self.stats()["total"]

    def reset(self):
        self.admin("POST", "reset", {})

    def faults(self, **settings):
        return self.admin("POST", "faults", settings)

    def add_fault(self, **fault):
        return self.admin("POST", "faults/add", fault)

    def clear_faults(self):
        return self.admin("POST", "faults/clear", {})

    def mutate(self, **op):
        return self.admin("POST", "mutate", op)

    def mutate_many(self, ops):
        """Several ops in one request, applied under one lock."""
        return self.admin("POST", "mutate", list(ops))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Mount:
    """A driftfs daemon in the foreground (-f) on a fresh mountpoint."""

    def __init__(self, api_url, workdir, opts=(), env=None, wait_sync=True,
                 cache_dir=None, wrapper=()):
        self.workdir = workdir
        self.path = os.path.join(workdir, "mnt")
        os.makedirs(self.path, exist_ok=True)
        self.cache = cache_dir or os.path.join(workdir, "cache")
        self.api_url = api_url
        self.opts = list(opts)
        self.wrapper = list(wrapper)    # argv before driftfs (setpriv ...)
        self.env = dict(os.environ, DRIFT_TOKEN=TOKEN,
                        XDG_CONFIG_HOME=os.path.join(workdir, "config"))
        self.env.update(env or {})
        self.proc = None
        try:
            self.start(wait_sync)
        except BaseException:
            # Nobody holds this object yet to unmount it: a daemon that
            # died or hung while starting must not leave a mount behind.
            self.unmount()
            raise

    def start(self, wait_sync=True):
        # A fast start: the governor's adaptive default begins at 20
        # requests/s, and every test's first sync would wait on it (a
        # test of the governor sets its own rate=).
        rate = [] if any(x.startswith("rate=") for x in self.opts) else ["rate=400"]
        o = ["api_url=" + self.api_url, "cache_dir=" + self.cache, "refresh=3600",
             "timeout=5"] + rate + self.opts
        self.errlog = open(os.path.join(self.workdir, "driftfs.log"), "ab")
        wrap = self.wrapper + list(WRAPPER)
        if VALGRIND:
            self.starts = getattr(self, "starts", 0) + 1
            self.vglog = os.path.join(self.workdir,
                                      "valgrind.%d.log" % self.starts)
            wrap.append("--log-file=" + self.vglog)
            self.vglogs = getattr(self, "vglogs", []) + [self.vglog]
        self.proc = subprocess.Popen(wrap + [DRIFTFS, "-f", "-o", ",".join(o),
                                             self.path],
                                     env=self.env, stdout=self.errlog,
                                     stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.ismount(self.path) or self.proc.poll() is not None,
                 20 * SLOW, "the mount")
        if self.proc.poll() is not None:
            raise RuntimeError("driftfs exited with %s: %s" % (self.proc.returncode,
                                                              self.logtext()))
        if wait_sync:
            self.wait_synced()

    def logtext(self):
        if not self.errlog.closed:
            self.errlog.flush()
        with open(self.errlog.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def status(self):
        with open(os.path.join(self.path, ".driftfs", "status")) as f:
            return dict(line.split(": ", 1) for line in f.read().splitlines()
                        if ": " in line)

    def wait_synced(self, passes=1, timeout=120):
        wait_for(lambda: int(self.status().get("sync_passes", "0")) >= passes,
                 timeout * SLOW, "a sync pass")

    def ctl(self, command):
        """One ctl command, in one write(2): a buffered file object would
        write it again at close() after an EAGAIN, running it twice."""
        fd = os.open(os.path.join(self.path, ".driftfs", "ctl"), os.O_WRONLY)
        try:
            os.write(fd, (command + "\n").encode())
        finally:
            os.close(fd)

    def ctl_in_background(self, command):
        """ctl(command) on a thread of its own: returns the started
        thread and a dict that gets "ok", or "err" with the OSError."""
        import threading
        result = {}

        def run():
            try:
                self.ctl(command)
                result["ok"] = True
            except OSError as e:
                result["err"] = e
        t = threading.Thread(target=run)
        t.start()
        return t, result

    def p(self, *parts):
        return os.path.join(self.path, *parts)

    def read(self, *parts, mode="rb"):
        with open(self.p(*parts), mode) as f:
            return f.read()

    def json(self, *parts):
        return json.loads(self.read(*parts))

    def mounted(self):
        """Whether the kernel still has the mount (even a dead one, which
        os.path.ismount cannot stat)."""
        target = os.path.realpath(self.path)
        with open("/proc/mounts") as f:
            return any(line.split()[1] == target for line in f)

    def unmount(self):
        if self.proc is None:
            return
        if self.mounted():
            subprocess.run(["fusermount3", "-u", self.path], capture_output=True)
        try:
            self.proc.wait(15 * SLOW)
        except subprocess.TimeoutExpired:
            subprocess.run(["fusermount3", "-uz", self.path], capture_output=True)
            self.proc.kill()
            self.proc.wait()
            self.exit_problems = getattr(self, "exit_problems", []) + [
                "the daemon did not exit after unmount; killed"]
        if self.mounted():
            subprocess.run(["fusermount3", "-uz", self.path], capture_output=True)
        self.errlog.close()
        self.proc = None

    def suspicious(self):
        """Daemon output that betrays a crash or a sanitizer report, and
        any error valgrind found (the whole report, to fix it from)."""
        text = self.logtext()
        bad = [line for line in text.splitlines() if any(s in line for s in SUSPICIOUS)]
        bad += getattr(self, "exit_problems", [])
        for log in getattr(self, "vglogs", []):
            with open(log, errors="replace") as f:
                report = f.read()
            m = re.search(r"ERROR SUMMARY: (\d+) errors", report)
            # No summary: a test killed the daemon on purpose (kill -9);
            # an unmount that had to kill it is reported above.
            if m and int(m.group(1)):
                bad.append("%s:\n%s" % (log, report))
        return bad


def openssl_unavailable():
    """Why test certificates cannot be made here, or None when they can."""
    if not shutil.which("openssl"):
        return "the openssl command is not installed (package openssl)"
    return None


def make_test_pki(d):
    """A throwaway CA and server certificates made with the openssl CLI in d.

    Returns {"ca": ca.pem, name: (cert, key)} for name in
      good        signed by the CA, for 127.0.0.1 and localhost
      wrong_host  signed by the CA, for wrong.example only
      self_signed for 127.0.0.1 and localhost, signed by nobody we trust
      expired     signed by the CA, for 127.0.0.1, valid only in January 2020
    """
    os.makedirs(d, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*argv):
        p = subprocess.run(["openssl", *argv], cwd=d, capture_output=True)
        if p.returncode:
            raise RuntimeError("openssl %s: %s" % (argv[0], p.stderr.decode()))

    def p(name):
        return os.path.join(d, name)

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=driftfs test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    os.makedirs(p("db"), exist_ok=True)
    with open(p("db/index.txt"), "w"):
        pass
    with open(p("db/serial"), "w") as f:
        f.write("1000\n")
    with open(p("ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = test\n"
                "[test]\ndatabase = db/index.txt\nnew_certs_dir = db\n"
                "serial = db/serial\ndefault_md = sha256\npolicy = any\n"
                "unique_subject = no\ncopy_extensions = none\n"
                "[any]\ncommonName = supplied\n"
                "[local]\nsubjectAltName = IP:127.0.0.1,DNS:localhost\n"
                "basicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n"
                "[wrong]\nsubjectAltName = DNS:wrong.example\n"
                "basicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n")
    out = {"ca": p("ca.pem")}
    for name, cn, ext, dates in (
            ("good", "127.0.0.1", "local", ["-days", "2"]),
            ("wrong_host", "wrong.example", "wrong", ["-days", "2"]),
            ("expired", "127.0.0.1", "local",
             ["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"])):
        run("req", "-new", *ec, "-keyout", name + ".key", "-out", name + ".csr",
            "-subj", "/CN=" + cn)
        run("ca", "-batch", "-notext", "-config", "ca.cnf", "-cert", "ca.pem",
            "-keyfile", "ca.key", "-in", name + ".csr", "-out", name + ".pem",
            "-extensions", ext, *dates)
        out[name] = (p(name + ".pem"), p(name + ".key"))
    run("req", "-x509", *ec, "-keyout", "self_signed.key", "-out", "self_signed.pem",
        "-days", "2", "-subj", "/CN=127.0.0.1",
        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost")
    out["self_signed"] = (p("self_signed.pem"), p("self_signed.key"))
    return out


def cache_file(m, name="cache.db"):
    """The path of a mount's cache.db (or name beside it): in the directory
    of the org, <cache_dir>/<host>/<orgId>/."""
    found = glob.glob(os.path.join(m.cache, "*", "[0-9]*", name))
    assert len(found) == 1, found
    return found[0]


def integrity(path):
    """PRAGMA integrity_check of a database file, read-only; a file SQLite
    cannot read at all gives [("error", why)]."""
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return db.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as e:
        return [("error", str(e))]
    finally:
        db.close()


# Dynamic files: what they say depends on the mount, not on the account.
DYNAMIC = {".driftfs/status", ".driftfs/stats", ".driftfs/errors"}


def tree(root):
    """Every file and symlink under root but the DYNAMIC ones: relative path
    -> bytes, or "-> target" for a symlink."""
    out = {}
    for d, dirs, files in os.walk(root):
        for name in files + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
            p = os.path.join(d, name)
            rel = os.path.relpath(p, root)
            if rel in DYNAMIC:
                continue
            if os.path.islink(p):
                out[rel] = "-> " + os.readlink(p)
            else:
                with open(p, "rb") as f:
                    out[rel] = f.read()
    return out


# What an API value might hold: OSC 52 (clipboard write), OSC 0 (title),
# CSI 2J (clear screen), the same as 8-bit C1 controls (U+009D OSC, U+009C
# ST, U+009B CSI), a DCS, a two-byte ESC c (reset) and a bidi override.
NASTY = ("\x1b]52;c;ZXZpbA==\x07\x1b]0;title\x1b\\\x1b[2J"
         "\u009d0;c1title\u009c\u009b31m\x1bPq#1\x1b\\\x1bc\u202e")
REMNANTS = ("]52;", "]0;", "0;title", "c1title", "[2J", "31m", "q#1",
            "ZXZpbA")


def assert_inert(what, data, remnants=REMNANTS):
    """No ESC, no C1 control, no bidi override, no remnant of a sequence."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    assert "\x1b" not in text, "%s holds ESC: %r" % (what, text)
    bad = [c for c in text if 0x80 <= ord(c) <= 0x9f or c == "\u202e"
           or (ord(c) < 0x20 and c not in "\n\t")]
    assert not bad, "%s holds controls %r: %r" % (what, bad, text)
    left = [r for r in remnants if r in text]
    assert not left, "%s keeps %r: %r" % (what, left, text)
