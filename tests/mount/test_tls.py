# SPDX-License-Identifier: MIT
"""TLS and transport safety of a mount: certificates are verified against
ca_file and fail closed with a message that names the TLS problem, plain
http:// is refused for hosts other than loopback, and redirects are never
followed (so the token never goes to another host)."""
import os
import subprocess

import pytest

from helpers import DRIFTFS, Emulator, wait_for


def errors(m):
    return m.read(".driftfs", "errors").decode()


def listed_contacts(m):
    return {int(n) for n in os.listdir(m.p("contacts")) if n.isdigit()}


def contacts_in_conversations(emu):
    """The contacts a sync lists (there is no contact list endpoint)."""
    return {c["contactId"] for c in emu.data()["conversations"]}


@pytest.fixture
def tls_emulator(tmp_path, pki):
    """Makes an HTTPS emulator serving the named certificate of pki."""
    made = []

    def make(name, *args):
        emu = Emulator(*args, workdir=str(tmp_path / ("emu-" + name)), tls=pki[name])
        made.append(emu)
        return emu
    yield make
    for emu in made:
        emu.stop()



def test_certificate_from_ca_file_is_trusted(tls_emulator, mounts, pki, tmp_path):
    emu = tls_emulator("good")
    assert emu.url.startswith("https://127.0.0.1:")
    m = mounts(emu.url, str(tmp_path), opts=["ca_file=" + pki["ca"]])
    assert listed_contacts(m) == contacts_in_conversations(emu) != set()
    assert "TLS" not in errors(m)


@pytest.mark.parametrize("cert,ca,reason", [
    ("self_signed", True, "self-signed certificate"),
    ("wrong_host", True, "no alternative certificate subject name matches"),
    ("expired", True, "certificate has expired"),
    ("good", False, "unable to get local issuer certificate"),
])
def test_unverifiable_certificate_fails_closed(tls_emulator, mounts, pki, tmp_path,
                                               cert, ca, reason):
    """The mount comes up (it can serve a cache offline) but nothing is
    fetched: not one HTTP request reaches the server, so the token never
    crosses the unverified connection, and the user is told why."""
    emu = tls_emulator(cert)
    m = mounts(emu.url, str(tmp_path), opts=["ca_file=" + pki["ca"]] if ca else [],
               wait_sync=False)
    m.wait_synced()
    want = "TLS certificate verification failed for %s: " % emu.url
    wait_for(lambda: want in errors(m), 10, "the TLS error in .driftfs/errors")
    line = next(l for l in errors(m).splitlines() if want in l)
    assert reason in line, line
    assert want in m.logtext() and reason in m.logtext()
    st = m.status()
    assert st["contacts"] == "0" and st["conversations"] == "0", st
    assert st["state"].startswith("offline"), st
    assert listed_contacts(m) == set()
    assert emu.requests() == []
    # Verification failures are not retried: one attempt, then the pass ends.
    assert errors(m).count("TLS certificate verification failed") <= 4


def test_missing_ca_file_stops_the_mount(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    p = subprocess.run([DRIFTFS, "-f", "-o", "api_url=https://127.0.0.1:9,ca_file=%s,"
                        "cache_dir=%s" % (tmp_path / "nope.pem", tmp_path / "cache"),
                        str(mnt)], capture_output=True, timeout=30,
                       env=dict(os.environ, DRIFT_TOKEN="t0ken"))
    assert p.returncode == 1
    assert "ca_file %s: No such file or directory" % (tmp_path / "nope.pem") in \
        p.stderr.decode()
    assert not os.path.ismount(mnt)


@pytest.mark.parametrize("url", ["http://example.com", "http://10.0.0.1:8080",
                                 "http://127.0.0.1.example.com",
                                 "http://localhost@example.com", "ftp://127.0.0.1"])
def test_plain_http_refused_for_other_hosts(tmp_path, url):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    p = subprocess.run([DRIFTFS, "-f", "-o", "api_url=%s,cache_dir=%s"
                        % (url, tmp_path / "cache"), str(mnt)],
                       capture_output=True, timeout=30,
                       env=dict(os.environ, DRIFT_TOKEN="t0ken"))
    assert p.returncode == 1
    err = p.stderr.decode()
    if url.startswith("http://"):
        assert "plain http:// is accepted only for loopback hosts" in err, err
    else:
        assert "must start with https://" in err, err
    assert not os.path.ismount(mnt)


@pytest.mark.parametrize("host,url_host", [("127.0.0.1", "localhost"),
                                           ("::1", "[::1]")])
def test_plain_http_allowed_for_loopback(tmp_path, mounts, host, url_host):
    emu = Emulator(workdir=str(tmp_path / "emu"), host=host)
    try:
        url = "http://%s:%d" % (url_host, emu.port)
        m = mounts(url, str(tmp_path))
        assert listed_contacts(m) == contacts_in_conversations(emu) != set()
    finally:
        emu.stop()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_is_not_followed(tmp_path, mounts, status):
    """Every API answer is a redirect to a second server. That server never
    gets a request (so never the Authorization header), and the errors say
    what happened."""
    other = Emulator(workdir=str(tmp_path / "other"))
    emu = Emulator(workdir=str(tmp_path / "emu"))
    try:
        emu.add_fault(kind="redirect", status=status, count=1000,
                      location=other.url + "{path}")
        m = mounts(emu.url, str(tmp_path), wait_sync=False)
        m.wait_synced()
        want = "HTTP %d: redirect to %s/" % (status, other.url)
        wait_for(lambda: want in errors(m), 10, "the redirect in .driftfs/errors")
        assert "not followed" in errors(m)
        assert emu.requests() and all(r["status"] == status for r in emu.requests())
        assert other.requests() == []
        assert m.status()["contacts"] == "0"
    finally:
        other.stop()
        emu.stop()
