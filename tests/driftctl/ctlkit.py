# SPDX-License-Identifier: MIT
"""driftctl for the tests: where the binary is, and Ctl, which runs it
against one emulator. A module of its own, not conftest.py: test files
import it by name, and "conftest" may already name tests/mount's."""
import os
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from helpers import ROOT, SUSPICIOUS, TOKEN  # noqa: E402

DRIFTCTL = os.environ.get("DRIFTCTL", os.path.join(ROOT, "build", "default", "driftctl"))


class Ctl:
    """Runs driftctl against one emulator with private XDG directories.

    Every run fails the test if driftctl's output shows a crash or a
    sanitizer report, or holds one of the secrets in `self.secrets` on
    stderr (tokens and client secrets must never be printed)."""

    def __init__(self, emulator, root):
        self.emulator = emulator
        self.root = str(root)
        self.config = os.path.join(self.root, "config")
        self.cache = os.path.join(self.root, "cache")
        self.credentials = os.path.join(self.config, "driftfs", "credentials")
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("DRIFT_TOKEN", "DRIFT_CLIENT_ID",
                                 "DRIFT_CLIENT_SECRET")}
        self.env.update(XDG_CONFIG_HOME=self.config, XDG_CACHE_HOME=self.cache)
        self.secrets = {TOKEN}

    # A fast start, as for the mounts (helpers.Mount): the governor's
    # adaptive default begins at 20 requests/s, and every sync of the
    # emulator's account waited on it, 3 s instead of 0.4. A test of the
    # governor passes its own --rate (or sets rate to None).
    rate = "400"

    def argv(self, *args):
        args = [str(a) for a in args]
        own = any(a == "--rate" or a.startswith("--rate=") for a in args)
        rate = ["--rate", self.rate] if self.rate and not own else []
        return [DRIFTCTL, "--api-url", self.emulator.url, "--timeout", "5",
                *rate, *args]

    def env_with(self, env):
        e = dict(self.env)
        e.update(env or {})
        return e

    def check_output(self, stdout, stderr):
        text = stderr.decode("utf-8", "replace")
        bad = [line for line in text.splitlines()
               if any(s in line for s in SUSPICIOUS)]
        assert not bad, "driftctl reported: %s" % bad
        for s in self.secrets:
            assert s not in text, "a secret was printed on stderr"

    def run(self, *args, input=None, env=None, timeout=120):
        p = subprocess.run(self.argv(*args), input=input, capture_output=True,
                           env=self.env_with(env), timeout=timeout)
        self.check_output(p.stdout, p.stderr)
        return p

    def popen(self, *args, env=None, **kw):
        return subprocess.Popen(self.argv(*args), env=self.env_with(env), **kw)

    def account_dir(self):
        return os.path.join(self.cache, "driftfs", "127.0.0.1_%d" % self.emulator.port)

    def org_dir(self, org=None):
        """The cache of one org (the only one there, by default)."""
        if org is not None:
            return os.path.join(self.account_dir(), str(org))
        orgs = [n for n in os.listdir(self.account_dir()) if n.isdigit()]
        assert len(orgs) == 1, orgs
        return os.path.join(self.account_dir(), orgs[0])

    def db_path(self):
        return os.path.join(self.org_dir(), "cache.db")

    def sql(self, query):
        """One query on the cache, read-only, beside whoever writes it."""
        con = sqlite3.connect("file:%s?mode=ro" % self.db_path(), uri=True,
                              timeout=30)
        try:
            return con.execute(query).fetchall()
        finally:
            con.close()

    def creds(self):
        """The credentials file as a dict (name = value lines)."""
        out = {}
        with open(self.credentials) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    k, v = line.split("=", 1)
                    out[k.strip()] = v.strip()
        return out

    def status(self, *args, env=None):
        p = self.run(*args, "status", env=env)
        return p, dict(line.split(": ", 1) for line in
                       p.stdout.decode().splitlines() if ": " in line)

    def login_token(self, token=TOKEN):
        p = self.run("login", "--token-stdin", input=(token + "\n").encode())
        assert p.returncode == 0, p.stderr
        return p

    def login_oauth(self, client_id="my-app", secret="s3cret-value"):
        self.secrets.add(secret)
        p = self.run("login", "--client-id", client_id, input=b"valid-code\n",
                     env={"DRIFT_CLIENT_SECRET": secret})
        assert p.returncode == 0, p.stderr
        self.secrets.add(self.creds()["access_token"])
        self.secrets.add(self.creds()["refresh_token"])
        return p


