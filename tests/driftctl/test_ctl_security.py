# SPDX-License-Identifier: MIT
"""driftctl's TLS and transport rules (the same client as driftfs), file
modes of everything driftctl login, driftctl sync and a mount write whatever
the umask, and what make install ships."""
import os
import re
import stat
import subprocess

import pytest

from ctlkit import DRIFTCTL, Ctl
from helpers import ROOT, Emulator

DX_USAGE, DX_API = 1, 3


@pytest.fixture
def emus(tmp_path):
    made = []

    def make(*args, **kw):
        emu = Emulator(*args, workdir=str(tmp_path / ("emu%d" % len(made))), **kw)
        made.append(emu)
        return emu
    yield make
    for emu in made:
        emu.stop()


def ctl_for(emu, tmp_path, name="ctl"):
    c = Ctl(emu, tmp_path / name)
    c.login_token()
    return c


def test_tls_with_ca_file(emus, pki, tmp_path):
    good = emus(tls=pki["good"])
    c = Ctl(good, tmp_path / "ctl")
    p = c.run("--ca-file", pki["ca"], "login", "--token-stdin", input=b"demo-token\n")
    assert p.returncode == 0, p.stderr
    p = c.run("--ca-file", pki["ca"], "api", "/users/list")
    assert p.returncode == 0, p.stderr
    assert b"Driftbot" in p.stdout


@pytest.mark.parametrize("cert,reason", [
    ("self_signed", "self-signed certificate"),
    ("wrong_host", "no alternative certificate subject name matches"),
    ("expired", "certificate has expired")])
def test_tls_failures_exit_3_and_say_why(emus, pki, tmp_path, cert, reason):
    emu = emus(tls=pki[cert])
    c = Ctl(emu, tmp_path / "ctl")
    # login --token-stdin checks the token with the API: refused too.
    p = c.run("--ca-file", pki["ca"], "login", "--token-stdin", input=b"demo-token\n")
    assert p.returncode == DX_API
    assert "could not check the token (TLS certificate verification failed for " \
        "%s: " % emu.url in p.stderr.decode(), p.stderr
    assert not os.path.exists(c.credentials)
    p = c.run("--ca-file", pki["ca"], "api", "/users/list",
              env={"DRIFT_TOKEN": "demo-token"})
    assert p.returncode == DX_API, p.stderr
    err = p.stderr.decode()
    assert "TLS certificate verification failed for %s: " % emu.url in err, err
    assert reason in err
    assert p.stdout == b""
    assert emu.requests() == []


@pytest.mark.parametrize("url", ["http://example.com", "http://192.0.2.1:8080"])
def test_plain_http_refused(ctl, url):
    p = subprocess.run([DRIFTCTL, "--api-url", url, "api", "/users/list"],
                       capture_output=True, env=ctl.env_with({"DRIFT_TOKEN": "t0ken"}),
                       timeout=30)
    assert p.returncode == DX_USAGE
    assert "plain http:// is accepted only for loopback hosts; use https://" in \
        p.stderr.decode()


@pytest.mark.parametrize("host,url_host", [("127.0.0.1", "localhost"),
                                           ("::1", "[::1]")])
def test_plain_http_loopback_allowed(emus, tmp_path, host, url_host):
    emu = emus(host=host)
    c = ctl_for(emu, tmp_path)
    p = c.run("--api-url", "http://%s:%d" % (url_host, emu.port), "api", "/users/list")
    assert p.returncode == 0, p.stderr
    assert b"Driftbot" in p.stdout


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_not_followed(emus, tmp_path, status):
    other = emus()
    emu = emus()
    c = ctl_for(emu, tmp_path)
    emu.add_fault(kind="redirect", status=status, location=other.url + "{path}")
    p = c.run("api", "/users/list")
    assert p.returncode == DX_API
    assert ("HTTP %d: redirect to %s/users/list not followed" % (status, other.url)) \
        in p.stderr.decode()
    assert other.requests() == []


def modes(*roots):
    """{path: mode} of every file and directory under roots."""
    out = {}
    for root in roots:
        for d, dirs, files in os.walk(root):
            out[d] = stat.S_IMODE(os.lstat(d).st_mode)
            for f in files:
                p = os.path.join(d, f)
                out[p] = stat.S_IMODE(os.lstat(p).st_mode)
    return out


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_private_files_whatever_the_umask(emulator, mounts, tmp_path, umask):
    """Credentials, cache.db and its -wal and -shm, lock and note files:
    0600 in 0700 directories, after driftctl login and sync and a mount of
    the same cache, all run under the umask."""
    old = os.umask(umask)
    try:
        ctl = Ctl(emulator, tmp_path / "ctl")
        ctl.login_token()
        assert ctl.run("sync").returncode == 0
        m = mounts(emulator.url, str(tmp_path / "m"), env={"DRIFT_TOKEN": ""},
                   opts=["credentials=" + ctl.credentials],
                   cache_dir=os.path.join(ctl.cache, "driftfs"))
        m.ctl("sync")
        found = modes(os.path.join(ctl.config, "driftfs"),
                      os.path.join(ctl.cache, "driftfs"))
    finally:
        os.umask(old)
    names = {os.path.basename(p) for p in found}
    assert {"credentials", "cache.db", "cache.db-wal", "cache.db-shm"} <= names, names
    loose = {p: oct(mo) for p, mo in found.items()
             if mo & 0o077 or (os.path.isdir(p) and mo != 0o700) or
             (not os.path.isdir(p) and mo != 0o600)}
    assert not loose, loose


def test_make_install_ships_the_updatedb_snippet(tmp_path):
    build = os.path.relpath(os.path.dirname(os.path.realpath(DRIFTCTL)), ROOT)
    dest = tmp_path / "dest"
    p = subprocess.run(["make", "-s", "-C", ROOT, "-o", "all", "install",
                        "DESTDIR=%s" % dest, "PREFIX=/usr", "BUILD=" + build],
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    snippet = dest / "usr/share/doc/driftfs/updatedb-driftfs.conf"
    assert stat.S_IMODE(snippet.stat().st_mode) == 0o644
    assert (dest / "usr/bin/driftfs").exists()
    # The edit the snippet tells the admin to make does what it says.
    cmd = re.search(r"sed -i '([^']*)'", snippet.read_text()).group(1)
    conf = tmp_path / "updatedb.conf"
    conf.write_text('PRUNE_BIND_MOUNTS="yes"\nPRUNEFS="NFS proc fuse.sshfs"\n')
    subprocess.run(["sed", "-i", cmd, str(conf)], check=True)
    assert 'PRUNEFS="NFS proc fuse.sshfs fuse.driftfs"' in conf.read_text()
