# SPDX-License-Identifier: MIT
"""The conventions sshfs and rclone users expect, on real mounts: fstab
lines work through mount(8) and mount.fuse3 (their own options, noauto,
user, _netdev, nofail, x-systemd.*, are ignored), fsname names the
account unless the user names it, uid=/gid=/umask= decide every node's
owner and mode (uid=/gid= without allow_other is warned of), READY=1
reaches $NOTIFY_SOCKET only once the mount answers (STOPPING=1 at the
end; an address too long for a unix socket is said in the log, never
cut short), log_level decides which lines are
printed and debug lines are driftfs's own (requests with status and
time, sync steps) without the token, and ACCOUNT profiles give two
mounts side by side their own credentials, cache and fsname. A signal
(SIGTERM, SIGINT, SIGHUP) ends a foreground mount with status 0 and no
mount left, a relative mountpoint too; a background daemon tells
$NOTIFY_SOCKET nothing (its MAINPID would be refused); a config file,
credentials file or cache directory of another user, or one others may
write, is refused; a ca_file that is a directory is status 1."""
import glob
import os
import signal
import socket
import stat
import subprocess

import pytest

from helpers import DRIFTFS, TOKEN, Emulator, wait_for


def mountinfo(path):
    """(fstype, source) of the mount on path, or None."""
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == target:
                rest = fields[fields.index("-") + 1:]
                return rest[0], rest[1]
    return None


def test_fsname_names_the_account_unless_given(emulator, mounts, tmp_path):
    m = mounts(emulator.url, str(tmp_path / "a"))
    assert mountinfo(m.path) == ("fuse.driftfs", "driftfs:default")
    m2 = mounts(emulator.url, str(tmp_path / "b"),
                opts=["fsname=crm-backup", "subtype=drift"])
    assert mountinfo(m2.path) == ("fuse.drift", "crm-backup")


def test_uid_gid_umask_own_every_node(emulator, mounts, tmp_path):
    plain = mounts(emulator.url, str(tmp_path / "a"))
    st = os.stat(plain.p("contacts"))
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
    assert stat.S_IMODE(st.st_mode) == 0o755
    cid = next(n for n in os.listdir(plain.p("contacts")) if n.isdigit())
    assert stat.S_IMODE(os.stat(plain.p("contacts", cid, "contact.json")).st_mode) == 0o644

    m = mounts(emulator.url, str(tmp_path / "b"),
               opts=["uid=1234", "gid=5678", "umask=027"])
    for rel, mode in [("", 0o750), ("contacts", 0o750),
                      ("contacts/%s/contact.json" % cid, 0o640),
                      ("contacts/%s/timeline" % cid, 0o640),
                      (".driftfs/status", 0o440)]:
        st = os.stat(m.p(rel))
        assert (st.st_uid, st.st_gid) == (1234, 5678), rel
        assert stat.S_IMODE(st.st_mode) == mode, (rel, oct(st.st_mode))
    link = os.lstat(m.p("conversations", "by-status", "open",
                        os.listdir(m.p("conversations", "by-status", "open"))[0]))
    assert stat.S_ISLNK(link.st_mode) and link.st_uid == 1234
    # Setting the mode a file shows is fine (cp -p, editors); another is not.
    os.chmod(m.p("contacts", cid, "contact.json"), 0o640)
    with pytest.raises(PermissionError):
        os.chmod(m.p("contacts", cid, "contact.json"), 0o644)


def test_owner_without_allow_other_is_warned_once(emulator, mounts, tmp_path):
    """uid=/gid= naming someone else without allow_other (or allow_root)
    shows an owner nobody else may use: the mount says so, once; with
    allow_other, or with the mounting user's own ids, it says nothing."""
    warning = "without allow_other: only uid %d can use this mount" % os.getuid()
    for sub, opts, warned in [
            ("u", ["uid=1234"], True),
            ("g", ["gid=5678"], True),
            ("own", ["uid=%d" % os.getuid(), "gid=%d" % os.getgid()], False),
            ("plain", [], False)] + ([
            ("other", ["uid=1234", "gid=5678", "allow_other"], False),
            ("root", ["uid=1234", "allow_root"], False)]
            if os.geteuid() == 0 else []):
        m = mounts(emulator.url, str(tmp_path / sub), opts=opts)
        assert m.logtext().count(warning) == (1 if warned else 0), (opts, m.logtext())


def test_bad_owner_options_stop_the_mount(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    for opt in ["uid=alice", "umask=999", "log_level=loud"]:
        p = subprocess.run([DRIFTFS, "-f", "-o", opt, str(mnt)], capture_output=True,
                           timeout=30, env=dict(os.environ, DRIFT_TOKEN=TOKEN))
        assert p.returncode == 1, (opt, p.stderr)
        assert b"bad value for option " + opt.split("=")[0].encode() in p.stderr
        assert not os.path.ismount(mnt)


def daemon_pids(cache):
    """Pids of the mounts serving caches under cache (their mount notes)."""
    pids = []
    for note in glob.glob(os.path.join(cache, "**", "mount"), recursive=True):
        with open(note) as f:
            pids.append(int(f.readline()))
    return pids


def unmount_daemon(mnt, cache):
    pids = daemon_pids(cache)
    subprocess.run(["umount", mnt], capture_output=True)
    for pid in pids:
        wait_for(lambda: not os.path.exists("/proc/%d" % pid), 15,
                 "the daemon %d to exit after umount" % pid)
    if mountinfo(mnt):
        subprocess.run(["umount", "-l", mnt], capture_output=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="SKIP: mount(8) -T with an fstab "
                    "of our own needs root")
def test_fstab_lines_mount_with_mount_a(emulator, tmp_path):
    """The two fstab lines of the README through mount(8) and mount.fuse3:
    the boot-time one by `mount -a` and the noauto,user one by name.
    mount(8) gives helpers a fixed PATH, so the fuse.driftfs type (which
    needs driftfs in that PATH) is run through mount.fuse3 with ours, and
    mount(8) itself reads the same options with the type#program form."""
    binp = tmp_path / "bin"
    binp.mkdir()
    os.symlink(DRIFTFS, binp / "driftfs")
    env = dict(os.environ, PATH="%s:%s" % (binp, os.environ["PATH"]),
               DRIFT_TOKEN=TOKEN, XDG_CONFIG_HOME=str(tmp_path / "config"))
    ours = "api_url=%s,cache_dir=%s,refresh=3600,rate=400" % (emulator.url,
                                                               tmp_path / "cache")
    boot, user = tmp_path / "boot", tmp_path / "user"
    boot.mkdir()
    user.mkdir()
    fstab = tmp_path / "fstab"
    fstab.write_text(
        "%s#default %s fuse _netdev,nofail,x-systemd.automount,%s 0 0\n"
        "%s#default %s fuse noauto,user,%s 0 0\n"
        % (binp / "driftfs", boot, ours, binp / "driftfs", user, ours))
    try:
        p = subprocess.run(["mount", "-a", "-T", str(fstab)], env=env,
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert mountinfo(boot) == ("fuse.driftfs", "driftfs:default")
        assert mountinfo(user) is None          # noauto
        assert "conversations" in os.listdir(boot)
        unmount_daemon(str(boot), str(tmp_path / "cache"))

        p = subprocess.run(["mount", "-T", str(fstab), str(user)], env=env,
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert mountinfo(user) == ("fuse.driftfs", "driftfs:default")
        unmount_daemon(str(user), str(tmp_path / "cache"))

        # The modern line's type: what mount(8) runs for
        # "default MNT fuse.driftfs noauto,user,..." with driftfs in PATH.
        p = subprocess.run(["mount.fuse3", "default", str(user), "-t", "driftfs",
                            "-o", "rw,noauto,user,_netdev,nofail,"
                            "x-systemd.automount,x-systemd.idle-timeout=60,"
                            "auto,dev,suid," + ours],
                           env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert mountinfo(user) == ("fuse.driftfs", "driftfs:default")
        assert "contacts" in os.listdir(user)
    finally:
        for mnt in (boot, user):
            if mountinfo(mnt):
                unmount_daemon(str(mnt), str(tmp_path / "cache"))


def test_mount_only_options_reach_driftfs_harmlessly(emulator, mounts, tmp_path):
    """What mount.fuse3 may pass on (or a hand-made command line) does not
    make FUSE refuse the mount as an unknown option."""
    m = mounts(emulator.url, str(tmp_path), opts=[
        "noauto", "user", "users", "_netdev", "nofail", "auto", "defaults",
        "x-systemd.automount", "x-systemd.mount-timeout=30", "comment=x",
        "X-mount.mkdir", "X-mount.mode=0755"])
    assert "conversations" in os.listdir(m.path)
    assert "unknown option" not in m.logtext()


def exit_status(d, seconds=60):
    """The daemon's exit status; None (and its log in the failure) if
    it is still running after seconds: a stop finishes the sync's pass
    in flight first, which a loaded machine makes slow, not wrong."""
    try:
        return d.proc.wait(seconds)
    except subprocess.TimeoutExpired:
        return None


def default_signals():
    """In the child: SIGINT and SIGHUP as a terminal gives them. A suite
    run in the background (sh's `&` ignores SIGINT, nohup SIGHUP) would
    hand its ignored signals down, and libfuse leaves an ignored signal
    ignored: the signal test would wait for a stop that never comes."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


class Daemon:
    """driftfs -f started by hand (argv after the binary), for what the
    Mount helper does not do: an ACCOUNT argument, no DRIFT_TOKEN, a
    NOTIFY_SOCKET. stop() unmounts and waits for it."""

    def __init__(self, argv, env, mnt, log, cwd=None):
        self.mnt = mnt
        self.log = open(log, "wb")
        self.proc = subprocess.Popen([DRIFTFS, "-f"] + argv, env=env, cwd=cwd,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=default_signals)

    def wait_mounted(self):
        wait_for(lambda: mountinfo(self.mnt) or self.proc.poll() is not None,
                 20, "the mount")
        assert self.proc.poll() is None, open(self.log.name).read()

    def stop(self):
        if mountinfo(self.mnt):
            subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            subprocess.run(["fusermount3", "-uz", self.mnt], capture_output=True)
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.mark.parametrize("abstract", [False, True])
def test_ready_is_sent_once_the_mount_answers(emulator, tmp_path, abstract):
    if not os.path.exists("/dev/fuse"):
        pytest.skip("SKIP: no /dev/fuse")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = "driftfs-test-%d-%s" % (os.getpid(), tmp_path.name)
        sock.bind("\0" + name)
        address = "@" + name
    else:
        address = str(tmp_path / "notify")
        sock.bind(address)
    sock.settimeout(30)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ, DRIFT_TOKEN=TOKEN, NOTIFY_SOCKET=address,
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    d = Daemon(["-o", "api_url=%s,cache_dir=%s,refresh=3600,rate=400"
                % (emulator.url, tmp_path / "cache"), str(mnt)],
               env, str(mnt), str(tmp_path / "driftfs.log"))
    try:
        msg = sock.recv(4096).decode()
        # At the moment READY=1 arrives the mount exists and answers.
        assert mountinfo(mnt) == ("fuse.driftfs", "driftfs:default")
        assert os.stat(mnt).st_dev != os.stat(tmp_path).st_dev
        assert ".driftfs" in os.listdir(mnt)
        assert msg.split("\n") == ["READY=1", "MAINPID=%d" % d.proc.pid]
    finally:
        rc = d.stop()
    assert rc == 0
    sock.settimeout(5)
    assert sock.recv(4096) == b"STOPPING=1"
    sock.close()


def notify_mount(emulator, tmp_path, address, sub):
    """A mount told NOTIFY_SOCKET=address: its Daemon, started."""
    work = tmp_path / sub
    (work / "mnt").mkdir(parents=True)
    env = dict(os.environ, DRIFT_TOKEN=TOKEN, NOTIFY_SOCKET=address,
               XDG_CONFIG_HOME=str(work / "config"))
    return Daemon(["-o", "api_url=%s,cache_dir=%s,refresh=3600,rate=400"
                   % (emulator.url, work / "cache"), str(work / "mnt")],
                  env, str(work / "mnt"), str(work / "driftfs.log"))


def test_notify_socket_at_the_limit_and_past_it(emulator, tmp_path):
    """A unix socket address holds a path of 107 bytes (and its NUL), or
    an abstract "@name" of 108 ('@' stands for the leading NUL). At the
    limit READY=1 arrives, for an abstract name too; one byte more is never
    cut short to another address but said once in the log, naming
    NOTIFY_SOCKET and the limit, and the mount still serves."""
    if not os.path.exists("/dev/fuse"):
        pytest.skip("SKIP: no /dev/fuse")
    base = str(tmp_path / "s")
    if len(base) > 90:
        pytest.skip("SKIP: the temporary directory's path is too long")
    socks = []
    try:
        fit = {}
        for kind in ["path", "abstract"]:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            socks.append(sock)
            if kind == "path":
                os.makedirs(base)
                address = base + "/" + "n" * (106 - len(base))
                sock.bind(address)
            else:
                address = ("@driftfs-test-%d-" % os.getpid()).ljust(108, "x")
                sock.bind("\0" + address[1:])
            assert len(address) == (107 if kind == "path" else 108)
            sock.settimeout(30)
            d = notify_mount(emulator, tmp_path, address, kind)
            try:
                fit[kind] = sock.recv(4096).decode().split("\n")[0]
            finally:
                assert d.stop() == 0
        assert fit == {"path": "READY=1", "abstract": "READY=1"}

        for address in [base + "/" + "n" * (107 - len(base)),
                        "@" + "y" * 108]:
            d = notify_mount(emulator, tmp_path, address,
                             "long%d" % len(address))
            try:
                d.wait_mounted()
                log = lambda: open(d.log.name).read()
                wait_for(lambda: "could not tell systemd" in log(), 30,
                         "the readiness attempt")
                assert os.listdir(os.path.join(d.mnt, ".driftfs"))
            finally:
                assert d.stop() == 0
            text = log()
            assert text.count("NOTIFY_SOCKET %s: %d bytes, longer than a "
                              "unix socket address holds (107 for a path, "
                              "108 for an @abstract name" % (address, len(address))) == 1, text
    finally:
        for sock in socks:
            sock.close()


def test_no_ready_when_the_mount_fails(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "notify"),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    env.pop("DRIFT_TOKEN", None)
    p = subprocess.run([DRIFTFS, "-f", str(mnt)], env=env, capture_output=True,
                       timeout=30)
    assert p.returncode == 2, p.stderr
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)
    sock.close()


def test_log_levels(emulator, mounts, tmp_path):
    debug = mounts(emulator.url, str(tmp_path / "d"), opts=["log_level=debug"])
    text = debug.logtext()
    # driftfs's own debug lines: each request with its status and time,
    # and the sync's steps; never a header, never the token.
    assert "driftfs: debug: GET /users/list" in text, text
    assert "HTTP 200 in " in text
    assert "driftfs: debug: sync: pass ended: ok" in text
    assert "driftfs: info: account default mounted on %s" % debug.path in text
    assert TOKEN not in text and "Authorization" not in text
    assert "unique: " not in text       # FUSE's own trace needs -d

    quiet = mounts(emulator.url, str(tmp_path / "q"), opts=["log_level=error"])
    quiet.ctl("sync")
    quiet.wait_synced(2)
    assert quiet.logtext() == ""


def write_credentials(cfg, account, token):
    d = os.path.join(cfg, "driftfs", "accounts", account)
    os.makedirs(d, mode=0o700)
    path = os.path.join(d, "credentials")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, (token + "\n").encode())
    os.close(fd)


def test_two_accounts_side_by_side(tmp_path):
    """driftfs work ~/drift-work next to driftfs home ~/drift-home: each
    with the token of its own credentials file, its own cache directory
    and an fsname that tells them apart; driftctl --account reads the
    same places."""
    if not os.path.exists("/dev/fuse"):
        pytest.skip("SKIP: no /dev/fuse")
    work = Emulator("--token", "work-token", "--seed", "2", "--conversations", "7",
                    workdir=str(tmp_path / "emu-work"))
    home = Emulator("--token", "home-token", "--seed", "3", "--conversations", "4",
                    workdir=str(tmp_path / "emu-home"))
    cfg, cache = str(tmp_path / "config"), str(tmp_path / "cache")
    env = dict(os.environ, XDG_CONFIG_HOME=cfg, XDG_CACHE_HOME=cache)
    env.pop("DRIFT_TOKEN", None)
    env.pop("DRIFTFS_ACCOUNT", None)
    write_credentials(cfg, "work", "work-token")
    write_credentials(cfg, "home", "home-token")
    daemons = []
    try:
        for name, emu in [("work", work), ("home", home)]:
            os.makedirs(os.path.join(cfg, "driftfs", "accounts", name), exist_ok=True)
            with open(os.path.join(cfg, "driftfs", "accounts", name, "config"), "w") as f:
                f.write("api_url = %s\nrefresh = 3600\nrate = 400\n" % emu.url)
            mnt = str(tmp_path / ("drift-" + name))
            os.mkdir(mnt)
            d = Daemon([name, mnt], env, mnt, str(tmp_path / (name + ".log")))
            daemons.append(d)
            d.wait_mounted()
        for d, name, emu in [(daemons[0], "work", work), (daemons[1], "home", home)]:
            assert mountinfo(d.mnt) == ("fuse.driftfs", "driftfs:" + name)
            def ids():
                return {n for n in os.listdir(os.path.join(d.mnt, "conversations"))
                        if n.isdigit()}
            want = {str(c["id"]) for c in emu.data()["conversations"]}
            # conversations/ holds by-status/ and the like too: the ids
            # alone say the first sync is done (slow under sanitizers).
            wait_for(lambda: len(ids()) >= len(want), 60, "the first sync")
            assert ids() == want
            # Its cache is its own, under accounts/NAME.
            dbs = glob.glob(os.path.join(cache, "driftfs", "accounts", name, "*",
                                         "*", "cache.db"))
            assert len(dbs) == 1, dbs
            # Each emulator accepts only its own token: the listing above
            # came with the account's own credentials.
        assert not os.path.exists(os.path.join(cache, "driftfs", "127.0.0.1_%d"
                                               % work.port))
        # driftctl finds the same account's mount and cache.
        p = subprocess.run([os.environ.get("DRIFTCTL", os.path.join(
            os.path.dirname(DRIFTFS), "driftctl")), "--account", "home", "status",
            "--offline"], env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert "accounts/home/" in p.stdout and daemons[1].mnt in p.stdout, p.stdout
    finally:
        for d in daemons:
            assert d.stop() == 0
        work.stop()
        home.stop()


@pytest.mark.parametrize("system", ["dir", "bundle"])
def test_ca_file_adds_to_the_system_cas(mounts, pki, tmp_path, system):
    """ca_file is trusted besides the system's CAs, not instead of them.
    The test CA plays the system's here, in a hashed directory
    ($SSL_CERT_DIR, as /etc/ssl/certs is) or, with no directory, a bundle
    file ($SSL_CERT_FILE); ca_file names an unrelated certificate. The
    server's certificate, signed by the "system" CA, is still trusted."""
    emu = Emulator(workdir=str(tmp_path / "emu"), tls=pki["good"])
    try:
        if system == "dir":
            sysdir = tmp_path / "certs"
            sysdir.mkdir()
            h = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in",
                                pki["ca"]], capture_output=True, text=True,
                               check=True).stdout.strip()
            with open(pki["ca"], "rb") as src:
                (sysdir / (h + ".0")).write_bytes(src.read())
            env = {"SSL_CERT_DIR": str(sysdir)}
        else:
            env = {"SSL_CERT_DIR": str(tmp_path / "no-such-dir"),
                   "SSL_CERT_FILE": pki["ca"]}
        m = mounts(emu.url, str(tmp_path / "m"), env=env,
                   opts=["ca_file=" + pki["self_signed"][0]])
        assert {int(n) for n in os.listdir(m.p("contacts")) if n.isdigit()} == \
            {c["contactId"] for c in emu.data()["conversations"]} != set()
        assert "TLS" not in m.read(".driftfs", "errors").decode()

        # The same ca_file with the real system CAs, which do not know the
        # test CA: refused, so verification did happen above.
        bad = mounts(emu.url, str(tmp_path / "bad"), wait_sync=False,
                     opts=["ca_file=" + pki["self_signed"][0]])
        bad.wait_synced()
        assert "TLS certificate verification failed" in \
            bad.read(".driftfs", "errors").decode()
        assert bad.status()["conversations"] == "0"
    finally:
        emu.stop()


def emu_opts(emulator, tmp_path):
    return "api_url=%s,cache_dir=%s,refresh=3600,rate=400" % (emulator.url,
                                                               tmp_path / "cache")


def emu_daemon(emulator, tmp_path, mnt):
    """driftfs -f of the emulator's account on mnt (made here), with a
    token in its environment and a config directory of its own."""
    mnt.mkdir()
    env = dict(os.environ, DRIFT_TOKEN=TOKEN,
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    return Daemon(["-o", emu_opts(emulator, tmp_path), str(mnt)], env,
                  str(mnt), str(tmp_path / "driftfs.log"))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_ends_the_mount_with_0(emulator, tmp_path, sig):
    """Ctrl-C, or systemd's SIGTERM when the unmount could not: a stop
    asked for, as an unmount is; the mount goes with the daemon."""
    mnt = tmp_path / "mnt"
    d = emu_daemon(emulator, tmp_path, mnt)
    try:
        d.wait_mounted()
        assert ".driftfs" in os.listdir(mnt)
        d.proc.send_signal(sig)
        assert exit_status(d) == 0, open(d.log.name).read()
        assert mountinfo(mnt) is None
    finally:
        d.stop()


def signal_masks(pid):
    """{tid: (blocked, name)} of every thread of pid, from /proc."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                fields = dict(line.rstrip("\n").split(":\t", 1)
                              for line in f if ":\t" in line)
        except FileNotFoundError:
            continue            # a thread that ended meanwhile
        out[int(tid)] = (int(fields["SigBlk"], 16), fields["Name"])
    return out


def test_only_the_main_thread_takes_a_stop_signal(emulator, tmp_path):
    """A stop signal delivered to one of driftfs's own threads (sync,
    outbox, notifier, ...) set libfuse's exit flag but woke nobody: the
    mount stayed up (CI saw SIGHUP ignored for 60 s). The kernel gives a
    process signal to any thread that does not block it, so every thread
    but the main one must block SIGTERM, SIGINT, SIGHUP and SIGQUIT, and
    the main thread must not."""
    mnt = tmp_path / "mnt"
    d = emu_daemon(emulator, tmp_path, mnt)
    try:
        d.wait_mounted()
        # Work for every kind of thread: lookups, a sync pass.
        assert ".driftfs" in os.listdir(mnt)
        os.listdir(mnt / "conversations")
        stops = 0
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP,
                    signal.SIGQUIT):
            stops |= 1 << (sig - 1)
        masks = signal_masks(d.proc.pid)
        assert len(masks) > 3, masks
        main = masks.pop(d.proc.pid)
        assert main[0] & stops == 0, "main thread blocks %x" % main[0]
        takers = {"%d (%s)" % (t, n): "%x" % b
                  for t, (b, n) in masks.items() if b & stops != stops}
        assert takers == {}, "threads that could take a stop signal"
        d.proc.send_signal(signal.SIGHUP)
        assert exit_status(d, 20) == 0, open(d.log.name).read()
    finally:
        d.stop()


@pytest.mark.parametrize("stop", ["signal", "fusermount3"])
def test_relative_mountpoint_leaves_no_mount(emulator, tmp_path, stop):
    """fuse_daemonize() moves to / even with -f: the daemon unmounts the
    absolute path, so a relative mountpoint is not left as a dead mount."""
    mnt = tmp_path / "rel"
    mnt.mkdir()
    env = dict(os.environ, DRIFT_TOKEN=TOKEN,
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    d = Daemon(["-o", emu_opts(emulator, tmp_path), "rel"], env, str(mnt),
               str(tmp_path / "driftfs.log"), cwd=str(tmp_path))
    try:
        d.wait_mounted()
        assert ".driftfs" in os.listdir(mnt)
        if stop == "signal":
            d.proc.send_signal(signal.SIGTERM)
        else:
            p = subprocess.run(["fusermount3", "-u", "rel"], cwd=str(tmp_path),
                               capture_output=True, text=True)
            assert p.returncode == 0, p.stderr
        assert d.proc.wait(15) == 0, open(d.log.name).read()
        assert mountinfo(mnt) is None
        assert "mounted on %s" % mnt in open(d.log.name).read()
    finally:
        d.stop()


def test_missing_mountpoint_is_a_usage_error(tmp_path):
    env = dict(os.environ, DRIFT_TOKEN=TOKEN,
               XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    p = refused_run([DRIFTFS, "-f", "-o", "offline", str(tmp_path / "none")],
                    env, tmp_path / "none")
    assert p.returncode == 1, p.stderr
    assert "mountpoint %s: No such file or directory" % (tmp_path / "none") \
        in p.stderr


def test_background_daemon_sends_no_notify(emulator, tmp_path):
    """Without -f the daemon is a child whose parent has exited: systemd
    would refuse its MAINPID under NotifyAccess=main, so it sends
    nothing, neither READY=1 nor STOPPING=1."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ, DRIFT_TOKEN=TOKEN, NOTIFY_SOCKET=str(tmp_path / "notify"),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    try:
        p = subprocess.run([DRIFTFS, "-o", emu_opts(emulator, tmp_path), str(mnt)],
                           env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert ".driftfs" in os.listdir(mnt)
        assert os.path.exists(mnt / ".driftfs" / "status")
    finally:
        unmount_daemon(str(mnt), str(tmp_path / "cache"))
    assert mountinfo(mnt) is None
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)
    sock.close()


def refused_run(argv, env, mnt):
    """driftfs -f expected to refuse before mounting; a mount it makes
    anyway (the bug) is detached, and the run's timeout ends it."""
    try:
        return subprocess.run(argv, env=env, capture_output=True, text=True,
                              timeout=30)
    finally:
        if mountinfo(mnt):
            subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)


def test_ca_file_directory_is_a_usage_error(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ, DRIFT_TOKEN=TOKEN,
               XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    p = refused_run([DRIFTFS, "-f", "-o", "ca_file=%s" % tmp_path, str(mnt)],
                    env, mnt)
    assert p.returncode == 1, p.stderr
    assert "not a regular file" in p.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="SKIP: files of another user "
                    "need root to make")
def test_files_of_others_are_refused(tmp_path):
    """A config file planted by another user could send the token to
    another api_url; a credentials file or cache directory of theirs
    could swap the account or the cache. Refused, as is a config file
    others may write."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cfgdir = tmp_path / "config" / "driftfs"
    cfgdir.mkdir(parents=True, mode=0o700)
    conf = cfgdir / "config"
    conf.write_text("api_url = http://127.0.0.1:1\n")
    base = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"),
                XDG_CACHE_HOME=str(tmp_path / "cache"))
    base.pop("DRIFTFS_ACCOUNT", None)
    env = dict(base, DRIFT_TOKEN=TOKEN)

    def run(env, *opts):
        argv = [DRIFTFS, "-f"] + [a for o in opts for a in ("-o", o)] + [str(mnt)]
        return refused_run(argv, env, mnt)

    os.chown(conf, 65534, 65534)
    p = run(env)
    assert p.returncode == 1, p.stderr
    assert "%s belongs to another user (uid 65534)" % conf in p.stderr
    os.chown(conf, 0, 0)
    os.chmod(conf, 0o664)
    p = run(env)
    assert p.returncode == 1, p.stderr
    assert "%s is writable by other users" % conf in p.stderr
    conf.unlink()

    creds = cfgdir / "credentials"
    fd = os.open(creds, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"someone-elses-token\n")
    os.close(fd)
    os.chown(creds, 65534, 65534)
    p = run(base)
    assert p.returncode == 2, p.stderr
    assert "%s belongs to another user" % creds in p.stderr

    cache = tmp_path / "theirs"
    cache.mkdir(mode=0o700)
    os.chown(cache, 65534, 65534)
    p = run(env, "offline", "cache_dir=%s" % cache)
    assert p.returncode == 6, p.stderr
    assert "%s belongs to another user" % cache in p.stderr
    assert os.listdir(cache) == []
    assert mountinfo(mnt) is None


def test_a_failed_lookup_by_email_keeps_the_address_out_of_the_errors(
        emulator, mount):
    """The error line of a failed request names its query's keys, not
    their values, as the debug line does: the journal would otherwise keep
    the email address of every contact the daemon looked up on its own (a
    created contact's landing check) while the API failed. The path the
    user asked for is still named, as any file system's errors do."""
    emulator.add_fault(kind="status", status=500, count=1000, method="GET",
                       path=r"^/contacts$")
    try:
        with pytest.raises(OSError):
            os.stat(mount.p("contacts", "by-email", "dana.private@example.net"))
    finally:
        emulator.clear_faults()
    errors = mount.read(".driftfs", "errors").decode()
    assert "GET /contacts?email=***: HTTP 500" in errors, errors
    assert "email=dana" not in errors, errors
