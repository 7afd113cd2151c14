# SPDX-License-Identifier: MIT
"""driftctl's side of the conventions: `driftctl help [COMMAND]` works as
git help does, the bash completion completes commands and options from
driftctl's own help, a missing token exits with the same status from
driftctl and driftfs, --account (or $DRIFTFS_ACCOUNT) reads and writes the
account's own credentials and cache, --log-level is honoured, and
`make install` writes the unit with the installed path (refusing one the
unit could not hold) and installs the completion, help needs no valid
account, and no home is refused rather than taken from /tmp."""
import os
import subprocess

import pytest

from ctlkit import DRIFTCTL
from helpers import DRIFTFS, ROOT, TOKEN


def run(argv, env=None, stdin=None):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          env=env, input=stdin)


def clean_env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DRIFT_TOKEN", "DRIFTFS_ACCOUNT")}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.update(extra)
    return env


def test_help_command(tmp_path):
    env = clean_env(tmp_path)
    top = run([DRIFTCTL, "help"], env)
    assert top.returncode == 0 and top.stdout == run([DRIFTCTL, "--help"], env).stdout
    for cmd in ["login", "sync", "status", "api", "report"]:
        assert "    %s " % cmd in top.stdout
        p = run([DRIFTCTL, "help", cmd], env)
        assert p.returncode == 0, p.stderr
        assert p.stdout == run([DRIFTCTL, cmd, "--help"], env).stdout
        assert p.stdout.startswith("usage: driftctl " + cmd)
    p = run([DRIFTCTL, "help", "frobnicate"], env)
    assert p.returncode == 1 and p.stdout == ""
    assert "no such command 'frobnicate'" in p.stderr
    assert run([DRIFTCTL, "help", "sync", "status"], env).returncode == 1


def complete(words, cword=None):
    """What the bash completion offers for the words (the last one being
    completed), as bash would call it."""
    script = os.path.join(ROOT, "scripts", "driftctl.bash-completion")
    words = [DRIFTCTL] + words
    arr = " ".join("'%s'" % w for w in words)
    p = run(["bash", "--norc", "-c",
             'source "$1"; COMP_WORDS=(%s); COMP_CWORD=%d; _driftctl; '
             'printf "%%s\\n" "${COMPREPLY[@]}"'
             % (arr, len(words) - 1 if cword is None else cword), "bash", script])
    assert p.returncode == 0, p.stderr
    return [w for w in p.stdout.split("\n") if w]


def test_bash_completion(tmp_path):
    assert complete(["sy"]) == ["sync"]
    assert set(complete([""])) >= {"login", "sync", "status", "api", "report", "help"}
    assert complete(["--log-l"]) == ["--log-level"]
    assert complete(["--log-level", "d"]) == ["debug"]
    assert complete(["sync", "--no-p"]) == ["--no-progress"]
    assert complete(["--account", "x", "report", "--fo"]) == ["--format"]
    assert complete(["report", "--format", ""]) == ["json", "csv"]
    assert complete(["help", "st"]) == ["status"]
    # An option of the command, after global options with values.
    assert "--token-stdin" in complete(["--api-url", "http://x", "login", "--"])


def test_missing_token_same_status_in_both(tmp_path):
    env = clean_env(tmp_path)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    fs = run([DRIFTFS, "-f", str(mnt)], env)
    ctl = run([DRIFTCTL, "status"], env)
    api = run([DRIFTCTL, "api", "/users/list"], env)
    assert fs.returncode == ctl.returncode == api.returncode == 2, \
        (fs.stderr, ctl.stderr, api.stderr)
    assert "no token" in fs.stderr and "no token" in api.stderr
    assert not os.path.ismount(mnt)


def test_help_needs_no_valid_account(tmp_path):
    """A bad $DRIFTFS_ACCOUNT is an error for a command, not for help."""
    env = clean_env(tmp_path, DRIFTFS_ACCOUNT="../x")
    want = run([DRIFTCTL, "--help"], clean_env(tmp_path)).stdout
    for argv in [["--help"], ["-h"], ["help"], ["help", "status"],
                 ["status", "--help"]]:
        p = run([DRIFTCTL] + argv, env)
        assert p.returncode == 0, (argv, p.stderr)
        assert p.stdout.startswith("usage: driftctl"), argv
    assert run([DRIFTCTL, "--help"], env).stdout == want
    assert run([DRIFTCTL, "status"], env).returncode == 1


def no_home_env(**extra):
    """An environment with no HOME and no XDG directories (env -i)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update(extra)
    return env


@pytest.mark.skipif(os.geteuid() != 0, reason="SKIP: running as a uid with "
                    "no passwd entry needs root")
def test_no_home_is_refused_never_tmp(tmp_path):
    """Without $HOME, the password database's home; with none there
    either, both programs refuse (status 1) instead of using /tmp, where
    another user could plant a config file."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    os.chmod(tmp_path, 0o755)
    uid = 54321
    import pwd
    try:
        pwd.getpwuid(uid)
        pytest.skip("SKIP: uid %d has a passwd entry here" % uid)
    except KeyError:
        pass
    as_nobody = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid,
                 "--clear-groups"]
    for argv in [[DRIFTFS, "-f", str(mnt)], [DRIFTCTL, "status"]]:
        p = subprocess.run(as_nobody + argv, env=no_home_env(), cwd=str(tmp_path),
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 1, (argv, p.stderr)
        assert "no home directory" in p.stderr and "/tmp" not in p.stderr, p.stderr
    assert not os.path.ismount(mnt)
    # The XDG directories alone are enough.
    p = subprocess.run(as_nobody + [DRIFTCTL, "status", "--offline"],
                       env=no_home_env(XDG_CONFIG_HOME=str(tmp_path / "c"),
                                       XDG_CACHE_HOME=str(tmp_path / "k")),
                       cwd=str(tmp_path), capture_output=True, text=True,
                       timeout=60)
    assert "no home directory" not in p.stderr, p.stderr


def test_bad_account_names_are_usage_errors(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    for name in ["../x", "a/b", ".hidden", "x" * 65]:
        env = clean_env(tmp_path, DRIFT_TOKEN=TOKEN)
        assert run([DRIFTCTL, "--account", name, "status"], env).returncode == 1
        assert run([DRIFTCTL, "status"], dict(env, DRIFTFS_ACCOUNT=name)).returncode == 1
        p = run([DRIFTFS, "-f", name, str(mnt)], env)
        assert p.returncode == 1 and "ACCOUNT" in p.stderr, p.stderr
    assert not os.path.exists(tmp_path / "x")
    assert not os.path.exists(tmp_path / "cache")


def test_account_has_its_own_credentials_and_cache(emulator, tmp_path):
    env = clean_env(tmp_path)
    base = [DRIFTCTL, "--api-url", emulator.url, "--rate", "400"]
    p = run(base + ["--account", "work", "login", "--token-stdin"], env, TOKEN + "\n")
    assert p.returncode == 0, p.stderr
    creds = tmp_path / "config" / "driftfs" / "accounts" / "work" / "credentials"
    assert creds.exists() and oct(creds.stat().st_mode & 0o777) == "0o600"
    assert not (tmp_path / "config" / "driftfs" / "credentials").exists()
    # The environment names the account as well as --account does.
    p = run(base + ["sync"], dict(env, DRIFTFS_ACCOUNT="work"))
    assert p.returncode == 0, p.stderr
    dbs = list((tmp_path / "cache" / "driftfs" / "accounts" / "work").glob("*/*/cache.db"))
    assert len(dbs) == 1
    # The default account has no token: its own place, not work's.
    assert run(base + ["status"], env).returncode == 2
    p = run(base + ["status", "--account=work"], env)
    assert p.returncode == 0 and "accounts/work/" in p.stdout, p.stdout
    # The account's own config file applies to it alone.
    (tmp_path / "config" / "driftfs" / "accounts" / "work" / "config").write_text(
        "timeout = banana\n")
    p = run(base + ["--account", "work", "status"], env)
    assert p.returncode == 1 and "accounts/work/config:1" in p.stderr
    assert run(base + ["status"], env).returncode == 2
    # An account without a token is told the login that fills its file.
    p = run(base + ["--account", "home", "status"], env)
    assert p.returncode == 2 and "driftctl --account home login" in p.stderr, p.stderr


def test_log_level(emulator, tmp_path):
    env = clean_env(tmp_path, DRIFT_TOKEN=TOKEN)
    base = [DRIFTCTL, "--api-url", emulator.url, "--rate", "400"]
    p = run(base + ["--log-level", "debug", "api", "/users/list"], env)
    assert p.returncode == 0, p.stderr
    assert "debug: GET /users/list: HTTP 200 in " in p.stderr
    assert TOKEN not in p.stderr and "Authorization" not in p.stderr
    p = run(base + ["api", "/users/list"], env)
    assert p.returncode == 0 and "debug:" not in p.stderr
    assert run(base + ["--log-level", "loud", "status"], env).returncode == 1


def test_make_install_writes_the_unit_and_completion(tmp_path):
    dest = tmp_path / "dest"
    # The binaries under test, as they are: -o all builds nothing.
    p = run(["make", "-s", "-C", ROOT, "-o", "all", "install",
             "BUILD=" + os.path.dirname(DRIFTFS), "DESTDIR=%s" % dest,
             "PREFIX=/opt/drift"])
    if p.returncode and "pkg-config" in p.stderr:
        pytest.skip("SKIP: make install needs the build's packages: " + p.stderr)
    assert p.returncode == 0, p.stderr
    unit = (dest / "opt/drift/lib/systemd/user/driftfs@.service").read_text()
    assert "ExecStart=/opt/drift/bin/driftfs -f %h/%i" in unit
    assert "Type=notify" in unit and "NotifyAccess=main" in unit
    assert "@BINDIR@" not in unit
    lines = unit.split("\n")
    # A stale mount (a driftfs that died) is detached before anything
    # touches the mountpoint, and a failure of that is no failure.
    pre = [l for l in lines if l.startswith("ExecStartPre=")]
    assert pre == ["ExecStartPre=-fusermount3 -uz %h/%i",
                   "ExecStartPre=mkdir -p %h/%i"], pre
    assert "ExecStop=fusermount3 -u %h/%i" in lines
    # systemd finds the helpers in its PATH: no /bin/ that a system
    # without a merged /usr lacks.
    assert not [l for l in lines if l.startswith("Exec") and "=/bin/" in l]
    # A bad option or no token needs the user: no restart loop.
    assert "RestartPreventExitStatus=1 2" in lines
    assert "network-online" not in unit.split("[Unit]")[1]
    comp = dest / "opt/drift/share/bash-completion/completions/driftctl"
    assert "complete -F _driftctl driftctl" in comp.read_text()
    assert (dest / "opt/drift/share/zsh/site-functions/_driftctl").exists()
    p = run(["make", "-s", "-C", ROOT, "uninstall", "DESTDIR=%s" % dest,
             "PREFIX=/opt/drift"])
    assert p.returncode == 0, p.stderr
    assert [f for f in dest.rglob("*") if f.is_file()] == []
    # The unit names BINDIR: one systemd or sed would read otherwise (a
    # specifier, a split, sed's & and |) or a relative one is refused
    # before anything is installed.
    for prefix in ["opt/drift", "/opt/a&b", "/opt/a|b", "/opt/50%", "/opt/a b"]:
        p = run(["make", "-s", "-C", ROOT, "-o", "all", "install",
                 "BUILD=" + os.path.dirname(DRIFTFS), "DESTDIR=%s" % dest,
                 "PREFIX=" + prefix])
        assert p.returncode != 0, prefix
        assert "make install: BINDIR" in p.stderr, p.stderr
        assert [f for f in dest.rglob("*") if f.is_file()] == [], prefix


def test_journal_stream_gets_priorities(tmp_path):
    """On a stderr that is journald's stream ($JOURNAL_STREAM names it, as
    systemd does for a unit), each line starts with its syslog priority."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    log = tmp_path / "stderr"
    with open(log, "wb") as f:
        st = os.fstat(f.fileno())
        env = clean_env(tmp_path, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
        p = subprocess.run([DRIFTFS, "-f", str(mnt)], env=env, stderr=f, timeout=60)
    assert p.returncode == 2
    assert log.read_text().startswith("<3>error: no token"), log.read_text()
    # Any other stderr keeps the plain form.
    p = run([DRIFTFS, "-f", str(mnt)], clean_env(tmp_path, JOURNAL_STREAM="1:2"))
    assert p.stderr.startswith("driftfs: error: no token"), p.stderr


def test_account_never_a_value_nor_takes_one(tmp_path):
    """--account is read before the other options (it picks the config
    file they override), so it must parse the same way then and later: a
    word starting with "--" is never an option's value. "--limit --account
    x" is a usage error naming --limit, not a limit of "--account" read
    with account x, and "--account --offline" names --account."""
    env = clean_env(tmp_path, DRIFT_TOKEN=TOKEN)
    cases = [
        (["--api-url", "--account", "x", "status"], "--api-url"),
        (["search", "--limit", "--account", "x", "foo"], "--limit"),
        (["search", "-n", "--account=x", "foo"], "-n"),
        (["--offline", "status", "--credentials", "--account", "x"],
         "--credentials"),
        (["--account", "--offline", "status"], "--account"),
        (["--account", "--", "status"], "--account"),
    ]
    for argv, opt in cases:
        p = run([DRIFTCTL] + argv, env)
        assert p.returncode == 1, (argv, p.stdout, p.stderr)
        assert "option %s needs a value" % opt in p.stderr, (argv, p.stderr)
    assert not os.path.exists(tmp_path / "cache")
    # A value that starts with "--" is still possible, with "=".
    p = run([DRIFTCTL, "--offline", "--credentials=--x", "status"], env)
    assert "needs a value" not in p.stderr, p.stderr


def test_log_lines_name_their_program(tmp_path):
    """driftctl's own log lines say "driftctl:", driftfs's "driftfs:"."""
    env = clean_env(tmp_path)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    ctl = run([DRIFTCTL, "api", "/users/list"], env)
    assert ctl.returncode == 2
    assert ctl.stderr.startswith("driftctl: error: no token"), ctl.stderr
    assert "driftfs:" not in ctl.stderr, ctl.stderr
    fs = run([DRIFTFS, "-f", str(mnt)], env)
    assert fs.stderr.startswith("driftfs: error: no token"), fs.stderr


def test_debug_request_line_hides_query_values(emulator, tmp_path):
    """The debug line of a request shows its query's keys, not their
    values: a lookup by email must not put the address in the journal."""
    env = clean_env(tmp_path, DRIFT_TOKEN=TOKEN)
    base = [DRIFTCTL, "--api-url", emulator.url, "--rate", "400",
            "--log-level", "debug", "api"]
    p = run(base + ["/contacts?email=ann.secret%40example.com&limit=5"], env)
    assert "debug: GET /contacts?email=***&limit=***: HTTP " in p.stderr, p.stderr
    assert "ann.secret" not in p.stderr and "example.com" not in p.stderr
    p = run(base + ["-q", "email=bob.hidden@example.org", "/contacts"], env)
    assert "debug: GET /contacts?email=***: HTTP " in p.stderr, p.stderr
    assert "bob.hidden" not in p.stderr, p.stderr
