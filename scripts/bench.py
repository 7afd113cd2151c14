#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make bench: driftfs against the same tree copied to a tmpfs.

Seeds a large emulated account, syncs it cold (counting API requests against
the minimum the paging allows), copies the mounted tree to a tmpfs, then runs
each workload on the mount and on the copy, interleaved, several times, and
prints medians and their ratio. Nothing here asserts: it measures.
"""
import argparse
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from helpers import (DRIFTFS as DRIFTFS_EXE, Emulator, Mount, cache_file,  # noqa: E402
                     fuse_unavailable, wait_for)

PHRASE = "purple elephant quorum"


def run(cmd, cwd=None):
    t = time.perf_counter()
    subprocess.run(cmd, shell=True, cwd=cwd, check=False, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def minimum_requests(data, conv_page):
    """What a cold sync must ask for at least, given the page sizes (the
    paging minimum, BENCHMARKS.md): the pass's fixed lists (users, contact
    attributes, playbooks, each accounts page, the conversation stats),
    each page of the conversation list, and per conversation one GET and
    one GET per 50 messages (at least one), one GET per distinct contact
    and one per attachment."""
    convs = data["conversations"]
    contacts = {c["contactId"] for c in convs if c.get("contactId")}
    msgs = sum(max(1, math.ceil(len(data["messages"][str(c["id"])]) / 50)) for c in convs)
    return (1 + 1 + 1 + 1                              # users, attributes, playbooks, stats
            + max(1, math.ceil(len(data["accounts"]) / 65))
            + max(1, math.ceil(len(convs) / conv_page))
            + len(convs) + msgs + len(contacts) + len(data["attachments"]))


def conv_page_size(emu, data):
    """The conversation list's page size the sync was served (100, or 50
    for a legacy server), from the pages it asked for."""
    pages = emu.stats()["by_endpoint"].get("GET /conversations/list", 0)
    return 100 if pages <= math.ceil(len(data["conversations"]) / 100) + 1 else 50


def peak_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def ratio_line(name, tm, tc):
    print("%-26s %10.3f %10.3f %8.2f" % (name, tm, tc, tm / tc if tc else float("nan")))


def side_by_side(runs, fn_mount, fn_copy):
    """Medians of runs interleaved timings (after one warm-up of each)."""
    fn_mount()
    fn_copy()
    tm, tc = [], []
    for _ in range(runs):
        tm.append(fn_mount())
        tc.append(fn_copy())
    return statistics.median(tm), statistics.median(tc)


def first_ls_ms(m, runs):
    """Mount with a warm cache until the first ls of the root answers."""
    times = []
    for _ in range(runs):
        m.unmount()
        t = time.perf_counter()
        m.start(wait_sync=False)
        os.listdir(m.path)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


class Setup:
    """One benchmark's scratch directories (one on tmpfs), emulator and
    mount; on the way out, whatever happened, the mount is unmounted, the
    emulator stopped and the directories removed."""

    def __enter__(self):
        self.work = tempfile.mkdtemp(prefix="driftfs-bench-")
        self.shm = tempfile.mkdtemp(prefix="driftfs-bench-", dir="/dev/shm")
        self.emu = self.m = None
        return self

    def emulator(self, *args):
        self.emu = Emulator(*args, workdir=os.path.join(self.work, "emu"))
        return self.emu

    def mount(self, *opts):
        """Mounts with a cold cache and waits for the first sync pass."""
        self.m = Mount(self.emu.url, self.work, opts=list(opts), wait_sync=False)
        self.m.wait_synced(timeout=3600)
        return self.m

    def __exit__(self, *exc):
        if self.m:
            self.m.unmount()
        if self.emu:
            self.emu.stop()
        shutil.rmtree(self.shm, ignore_errors=True)
        shutil.rmtree(self.work, ignore_errors=True)


def bench_bigdir(a):
    """ls -l of one directory with --big entries, against a tmpfs copy."""
    with Setup() as b:
        emu = b.emulator("--conversations", 20, "--contacts", 20, "--messages", 2,
                         "--attachments", 0, "--big-conversation", a.big)
        msgs = emu.data()["messages"]
        big = max(msgs, key=lambda c: len(msgs[c]))
        m = b.mount("conns=4")
        src = m.p("conversations", big, "messages")
        copy = os.path.join(b.shm, "messages")
        subprocess.run(["rsync", "-a", src + "/", copy + "/"], check=True)
        n = len(os.listdir(copy))
        tm, tc = side_by_side(a.runs, lambda: run("ls -l %s" % src),
                              lambda: run("ls -l %s" % copy))
        print("\none directory of %d entries (conversations/%s/messages)" % (n, big))
        ratio_line("ls -l", tm, tc)
        # The same directory, cold in the kernel: every entry from readdirplus.
        tm, tc = side_by_side(a.runs, lambda: run("echo 2 > /proc/sys/vm/drop_caches; "
                                                  "ls -l %s" % src),
                              lambda: run("echo 2 > /proc/sys/vm/drop_caches; "
                                          "ls -l %s" % copy))
        ratio_line("ls -l, dentries dropped", tm, tc)


def bench_rate(a):
    """A cold sync against an API limited to --rate requests/s, each
    answered after 50 ms: how close to the limit the sync runs."""
    with Setup() as b:
        emu = b.emulator("--conversations", 200, "--contacts", 150, "--messages", 4,
                         "--attachments", 10, "--rate", a.rate, "--burst", a.rate,
                         "--latency", 50)
        emu.reset()
        t = time.perf_counter()
        b.mount("conns=8", "timeout=60")
        took = time.perf_counter() - t
        st = emu.stats()
        total = st["total"]
        limited = sum(v for k, v in st.get("by_status", {}).items() if str(k) == "429")
        print("\ncold sync against a limit of %g requests/s (50 ms latency): "
              "%d requests (%d answered 429) in %.1f s = %.1f requests/s, "
              "ratio to the limit %.2f" % (a.rate, total, limited, took, total / took,
                                           total / took / a.rate))


_floor_exe = None


def fuse_floor_exe():
    """scripts/fuse_floor.c built under build/bench/ (once a run): its
    path."""
    global _floor_exe
    if _floor_exe:
        return _floor_exe
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    exe = os.path.join(root, "build", "bench", "fuse_floor")
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"], check=True,
                           capture_output=True, text=True).stdout.split()
    subprocess.run(["cc", "-O2", "-Wall", "-o", exe,
                    os.path.join(root, "scripts", "fuse_floor.c")] + flags, check=True)
    _floor_exe = exe
    return exe


class FloorMount:
    """scripts/fuse_floor.c mounted at mnt (made here) in mode, with n
    entries of size bytes; unmounted and stopped on the way out."""

    def __init__(self, exe, mode, n, size, mnt):
        self.mnt = mnt
        os.makedirs(mnt, exist_ok=True)
        self.proc = subprocess.Popen([exe, mode, str(n), str(size), mnt])
        deadline = time.time() + 20
        while not os.path.ismount(mnt) and time.time() < deadline:
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if not os.path.ismount(mnt):
            self.__exit__()
            raise RuntimeError("fuse_floor %s did not mount at %s" % (mode, mnt))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        subprocess.run(["fusermount3", "-u", self.mnt], capture_output=True)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            subprocess.run(["fusermount3", "-uz", self.mnt], capture_output=True)
            self.proc.kill()
            self.proc.wait()


def bench_floor(a):
    """`cat` of many small files on a do-nothing FUSE filesystem
    (scripts/fuse_floor.c) in each open mode, against tmpfs: the least a
    round trip per open costs on this machine, whatever the daemon does."""
    exe = fuse_floor_exe()
    n, size = a.floor_files, 300
    with Setup() as b:
        copy = os.path.join(b.shm, "copy")
        os.makedirs(copy)
        for i in range(n):
            with open(os.path.join(copy, "f%d" % i), "wb") as f:
                f.write(b"x" * size)
        print("\n%d files of %d bytes on a do-nothing FUSE filesystem "
              "(scripts/fuse_floor.c)" % (n, size))
        for mode, what in (("open", "OPEN+RELEASE per file (read-write driftfs)"),
                           ("noopen", "FLUSH per file (no-open, commit at close)"),
                           ("none", "no request per file (driftfs -o ro)")):
            mnt = os.path.join(b.work, "floor-" + mode)
            with FloorMount(exe, mode, n, size, mnt):
                tm, tc = side_by_side(a.runs,
                                      lambda: run("find %s -type f -exec cat {} +" % mnt),
                                      lambda: run("find %s -type f -exec cat {} +" % copy))
                ratio_line("cat, " + mode, tm, tc)
                print("    %s: %.1f us a file over tmpfs" % (what, (tm - tc) / n * 1e6))


def bench_rss(a):
    """Peak RSS of the daemon with a large account, after a cold sync and
    a read of every file."""
    with Setup() as b:
        emu = b.emulator("--conversations", a.rss_conversations, "--contacts", 2500,
                         "--messages", a.rss_messages, "--attachments", 100)
        data = emu.data()
        nmsg = sum(len(v) for v in data["messages"].values())
        del data
        m = b.mount("conns=4")
        after_sync = peak_rss_kib(m.proc.pid)
        run("find %s -type f -exec cat {} +" % m.path)
        run("grep -r '%s' %s/conversations" % (PHRASE, m.path))
        rss = peak_rss_kib(m.proc.pid)
        print("\n%d conversations, %d messages: daemon peak RSS %.1f MiB after the "
              "cold sync, %.1f MiB after reading every file" % (
                  a.rss_conversations, nmsg, after_sync / 1024, rss / 1024))


# The account sizes of the scale benchmark (BENCH_SIZES=10k,100k picks
# some): about N messages, as conversations x mean messages each.
SCALE_SIZES = {"10k": (1000, 10), "100k": (2000, 50), "300k": (3000, 100)}
SCALE_CONTACTS = 2500   # more than one contact rotation (200) at every size


def conv_entries(m):
    """The conversation directories conversations/ lists, or none yet."""
    try:
        return [n for n in os.listdir(m.p("conversations")) if n.isdigit()]
    except OSError:
        return []


def status_progress(m):
    """(synced, total) from .driftfs/status while conversations sync."""
    try:
        v = m.status().get("conversations_synced", "")
    except OSError:
        return None
    done, _, total = v.partition("/")
    return (int(done), int(total)) if done.isdigit() and total.isdigit() else None


def tree_bytes(root):
    """The rendered tree's bytes (st_size of every file but .driftfs/)."""
    n = 0
    for d, dirs, files in os.walk(root):
        if d == root and ".driftfs" in dirs:
            dirs.remove(".driftfs")
        for f in files:
            try:
                n += os.lstat(os.path.join(d, f)).st_size
            except OSError:
                pass
    return n


def dir_bytes(root):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root)
               for f in fs)


def mark(ok):
    return "ok" if ok else "MISSED"


def bench_scale_size(a, name, convs, per):
    """One account size: every figure of the issue 12 table."""
    out = {}
    with Setup() as b:
        emu = b.emulator("--conversations", convs, "--messages", per,
                         "--contacts", SCALE_CONTACTS, "--attachments", 100)
        data = emu.data()
        nmsg = sum(len(v) for v in data["messages"].values())
        ids = [c["id"] for c in data["conversations"]]
        print("\n%s: %d conversations, %d messages, %d contacts, %d attachments" % (
            name, len(ids), nmsg, len(data["contacts"]), len(data["attachments"])),
            flush=True)

        # Cold mount: until the first `ls conversations` that shows entries.
        emu.reset()
        t = time.perf_counter()
        b.m = m = Mount(emu.url, b.work, opts=["conns=4"], wait_sync=False)
        wait_for(lambda: conv_entries(m), 600, "a first conversation listed",
                 interval=0.01)
        out["cold_ls"] = time.perf_counter() - t
        m.wait_synced(timeout=3600)
        out["cold_s"] = time.perf_counter() - t
        out["rss_sync_kib"] = peak_rss_kib(m.proc.pid)
        minimum = minimum_requests(data, conv_page_size(emu, data))
        out["cold_ratio"] = emu.total() / minimum
        out["cold_requests"], out["minimum"] = emu.total(), minimum

        # The tree it renders (the cache is measured at the unmount
        # below, once its clean close has folded the WAL back in).
        out["tree"] = tree_bytes(m.path)

        # Incremental passes: nothing changed, then 10 conversations.
        emu.reset()
        m.ctl("sync")
        out["idle_pass"] = emu.stats()["by_endpoint"]
        # Ten of one page of messages (under 50, one added), so that the
        # change is the same at every size: a changed conversation is
        # fetched whole, one GET per 50 of its messages.
        short = [i for i in ids if len(data["messages"][str(i)]) < 49]
        for cid in short[len(short) // 2:len(short) // 2 + 10]:
            emu.mutate(op="add_message", conversationId=cid, body="bench change")
        emu.reset()
        m.ctl("sync")
        out["pass10"] = emu.stats()["by_endpoint"]
        out["rss_kib"] = peak_rss_kib(m.proc.pid)

        # Warm remount: until the first `ls conversations`.
        times = []
        for _ in range(3):
            m.unmount()
            out.setdefault("cache", dir_bytes(m.cache))
            t = time.perf_counter()
            m.start(wait_sync=False)
            wait_for(lambda: conv_entries(m), 60, "the warm listing", interval=0.001)
            times.append(time.perf_counter() - t)
            m.wait_synced(timeout=3600)
        out["warm_ls"] = statistics.median(times)
        m.unmount()
        b.m = None

        # A cold sync killed (SIGKILL) half way, then resumed.
        emu.reset()
        work2 = os.path.join(b.work, "kill")
        os.makedirs(work2)
        b.m = m = Mount(emu.url, work2, opts=["conns=4"], wait_sync=False)
        wait_for(lambda: (status_progress(m) or (0, 1))[0] * 2 >= len(ids), 3600,
                 "half the conversations synced", interval=0.02)
        m.proc.send_signal(signal.SIGKILL)
        m.proc.wait(30)
        out["killed_at"] = status_progress_db(m)
        first = emu.total()
        m.unmount()
        m.start(wait_sync=True)
        m.wait_synced(timeout=3600)
        out["resume_requests"] = (first, emu.total() - first)
        out["resume_ratio"] = emu.total() / minimum
        m.unmount()
        b.m = None
    return out


def status_progress_db(m):
    """How many conversations a killed daemon's cache holds."""
    import sqlite3
    db = sqlite3.connect("file:%s?mode=ro" % cache_file(m), uri=True)
    try:
        return db.execute("SELECT count(*) FROM conversations").fetchone()[0]
    finally:
        db.close()


def bench_scale(a):
    """Issue 12's table: a first sync of a large account, at each size of
    BENCH_SIZES (default all three)."""
    # Mount.start polls for the mount every 50 ms: poll every 1 ms here,
    # or the warm figure would be rounded up to that.
    import helpers
    coarse = helpers.wait_for
    helpers.wait_for = lambda pred, timeout, what, interval=0.001: coarse(
        pred, timeout, what, min(interval, 0.001))
    sizes = [x.strip() for x in os.environ.get("BENCH_SIZES", ",".join(SCALE_SIZES)).split(",")
             if x.strip()]
    rows = {}
    for name in sizes:
        if name == "bench":     # the search section's size, not this one's
            continue
        if name not in SCALE_SIZES:
            print("BENCH_SIZES: unknown size %r (known: %s)" % (name, ", ".join(SCALE_SIZES)))
            continue
        rows[name] = bench_scale_size(a, name, *SCALE_SIZES[name])
    if not rows:
        return
    print("\n%-58s %s" % ("figure", "  ".join("%16s" % n for n in rows)))

    def line(what, target, fmt, ok):
        cells = []
        for n, r in rows.items():
            cells.append("%16s" % ("%s %s" % (fmt(r), mark(ok(r)))))
        print("%-58s %s   target %s" % (what, "  ".join(cells), target))
    line("cold mount -> first ls conversations with entries (s)", "<= 2 s",
         lambda r: "%.3f" % r["cold_ls"], lambda r: r["cold_ls"] <= 2)
    line("warm remount -> first ls conversations (ms)", "<= 100 ms",
         lambda r: "%.1f" % (r["warm_ls"] * 1000), lambda r: r["warm_ls"] <= 0.1)
    line("killed at 50%, resumed: requests / paging minimum", "<= 1.05",
         lambda r: "%.3f" % r["resume_ratio"], lambda r: r["resume_ratio"] <= 1.05)
    # The pass fetches the contact rotation's 200 and the contacts of the
    # 10 changed conversations, once each: where one of those 10 falls in
    # the rotation's 200 (a matter of the account's data, not its size)
    # the pass makes one request fewer. So the verdict: every request but
    # the contacts' is the same at every size, and the contacts' are
    # between 200 and 210.
    def others(r):
        return sum(v for k, v in r["pass10"].items() if k != "GET /contacts/{id}")

    def contacts(r):
        return r["pass10"].get("GET /contacts/{id}", 0)

    fixed = {others(r) for r in rows.values()}
    line("incremental pass, 10 conversations changed: requests", "the same at every size",
         lambda r: "%d" % sum(r["pass10"].values()),
         lambda r: len(fixed) == 1 and 200 <= contacts(r) <= 210)
    line("  ... of them contacts (rotation 200 + the 10's, overlap once)", "200..210",
         lambda r: "%d" % contacts(r), lambda r: 200 <= contacts(r) <= 210)
    line("cold sync requests / paging minimum", "<= 1.02",
         lambda r: "%.3f" % r["cold_ratio"], lambda r: r["cold_ratio"] <= 1.02)
    line("daemon peak RSS after the cold sync (MiB)", "<= 64 MiB at 300k, sublinear",
         lambda r: "%.1f" % (r["rss_sync_kib"] / 1024),
         lambda r: r["rss_sync_kib"] <= 64 * 1024)
    line("  ... after a stat of every file and two passes (MiB)", "<= 64 MiB at 300k",
         lambda r: "%.1f" % (r["rss_kib"] / 1024), lambda r: r["rss_kib"] <= 64 * 1024)
    line("cache on disk / rendered tree", "<= 1.5",
         lambda r: "%.2f" % (r["cache"] / r["tree"]), lambda r: r["cache"] / r["tree"] <= 1.5)
    print()
    for n, r in rows.items():
        print("%s: cold sync %.1f s, %d requests, paging minimum %d; killed with %d "
              "conversations stored, then %d + %d requests; cache %.1f MiB, tree %.1f MiB"
              % (n, r["cold_s"], r["cold_requests"], r["minimum"], r["killed_at"],
                 r["resume_requests"][0], r["resume_requests"][1], r["cache"] / 2**20,
                 r["tree"] / 2**20))
        for what in ("idle_pass", "pass10"):
            ep = r[what]
            print("  %s: %d requests: %s" % (
                "pass, nothing changed" if what == "idle_pass" else
                "pass, 10 conversations changed", sum(ep.values()),
                ", ".join("%s %d" % (k, v) for k, v in sorted(ep.items()))))


# --- Issue 13: search against ripgrep over the tmpfs copy -----------------

# The last commit of main without the search index: the honest "without"
# of the cold-sync figure. BENCH_BASE_DRIFTFS names a driftfs built from
# it; without it the bench builds one from this commit (git archive, so no
# worktree is added) under build/bench/.
BASE_REF = "f2ab0f1"

# Planted before the first sync: a phrase in SEARCH_PHRASE_CONVS
# conversations, a word in one conversation of SEARCH_WORD_EVERY. Neither
# occurs in the emulator's generated text (tests/emulator/drift_data.py),
# so the conversations that hold them are known exactly. The word's
# conversations stay under the 1000 a query lists at most
# (SEARCH_MAX_CONVS, include/search.h) at every size.
SEARCH_PHRASE = "crimson walrus ledger"
SEARCH_PHRASE_CONVS = 3
SEARCH_WORD = "zeppelin"
SEARCH_WORD_EVERY = 5

# Sizes of the search section: "bench" is the account of the tree section
# (--conversations x --messages), the others are the scale sizes.
SEARCH_DEFAULT_SIZES = "bench,300k"


def load():
    return "load %.2f" % os.getloadavg()[0]


def base_driftfs(root):
    """A driftfs without the search index: BENCH_BASE_DRIFTFS, else one
    built once from BASE_REF (git archive | tar, then make) under
    build/bench/base-<ref>/. Returns (path, None) or (None, why)."""
    exe = os.environ.get("BENCH_BASE_DRIFTFS")
    if exe:
        return (exe, None) if os.access(exe, os.X_OK) else \
            (None, "BENCH_BASE_DRIFTFS=%s is not an executable" % exe)
    src = os.path.join(root, "build", "bench", "base-" + BASE_REF)
    exe = os.path.join(src, "build", "default", "driftfs")
    if os.access(exe, os.X_OK):
        return exe, None
    print("building the driftfs without the index (%s) in %s ..." % (BASE_REF, src),
          flush=True)
    shutil.rmtree(src, ignore_errors=True)
    os.makedirs(src)
    p = subprocess.run("git -C %s archive %s | tar -x -C %s && make -C %s -j2 all" % (
        root, BASE_REF, src, src), shell=True, capture_output=True, text=True)
    if p.returncode != 0 or not os.access(exe, os.X_OK):
        return None, "cannot build %s: %s" % (BASE_REF, (p.stderr or p.stdout)[-400:])
    return exe, None


def plant_search(emu, data):
    """Adds the planted messages; returns (phrase conversation ids, word
    conversation ids), as the strings the tree names them by."""
    ids = [str(c["id"]) for c in data["conversations"]]
    n = len(ids)
    phrase = [ids[n // 7], ids[n // 2], ids[n - 1 - n // 9]][:SEARCH_PHRASE_CONVS]
    for cid in phrase:
        emu.mutate(op="add_message", conversationId=cid, authorType="user",
                   body="<p>Please check the %s before Friday.</p>" % SEARCH_PHRASE)
    word = ids[::SEARCH_WORD_EVERY]
    for cid in word:
        emu.mutate(op="add_message", conversationId=cid, authorType="user",
                   body="Your order ships by %s next week." % SEARCH_WORD)
    return set(phrase), set(word)


def rg_conversations(copy_convs, needle):
    """rg -l -F -uu over the copy's conversations/: (seconds, the ids of
    the conversations with a file that holds needle)."""
    t = time.perf_counter()
    p = subprocess.run(["rg", "-l", "-F", "-uu", needle, copy_convs],
                       capture_output=True, text=True)
    took = time.perf_counter() - t
    if p.returncode not in (0, 1):
        raise RuntimeError("rg failed (%d): %s" % (p.returncode, p.stderr[-300:]))
    ids = set()
    for line in p.stdout.splitlines():
        rel = os.path.relpath(line, copy_convs)
        ids.add(rel.split(os.sep, 1)[0])
    return took, ids


def ls_search(m, query):
    """ls search/<query>/conversations on the mount: (seconds, names), or
    (seconds, OSError) when the lookup fails."""
    path = m.p("search", query.replace("/", "%2F"), "conversations")
    t = time.perf_counter()
    p = subprocess.run(["ls", "-1", path], capture_output=True, text=True)
    took = time.perf_counter() - t
    if p.returncode != 0:
        return took, OSError(p.stderr.strip())
    return took, set(p.stdout.split())


def ls_floor(copy):
    """The same ls of an empty directory on tmpfs: what starting ls costs,
    whatever it lists (a floor under the search figure)."""
    empty = os.path.join(os.path.dirname(copy), "empty")
    os.makedirs(empty, exist_ok=True)
    t = time.perf_counter()
    subprocess.run(["ls", "-1", empty], capture_output=True)
    return time.perf_counter() - t


def index_sizes(m):
    """(index bytes, indexed text bytes) from .driftfs/status, or None
    where a key is missing."""
    st = m.status()

    def num(*keys):
        for k in keys:
            v = st.get(k, "").split()
            if v and v[0].isdigit():
                return int(v[0])
        return None
    return (num("search_index_bytes"), num("search_text_bytes"))


def fts_bytes_in_db(path):
    """The bytes of the FTS5 tables in a cache file (their shadow tables
    included), from dbstat; None when the file has none."""
    import sqlite3
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        names = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' "
            "AND sql LIKE '%USING fts5%' COLLATE NOCASE")]
        if not names:
            return None
        total = 0
        for n in names:
            total += db.execute("SELECT coalesce(sum(pgsize), 0) FROM dbstat "
                                "WHERE name = ? OR name LIKE ? ESCAPE '\\'",
                                (n, n.replace("_", "\\_") + "\\_%")).fetchone()[0]
        return total
    except sqlite3.Error as e:
        print("  (dbstat of %s: %s)" % (path, e))
        return None
    finally:
        db.close()


def index_building(m):
    """Whether the status says the index is still being built (an upgrade
    builds it in the background); status keys are the search branch's."""
    st = m.status()
    v = st.get("search_index", "")
    return v.startswith("building") or v.startswith("indexing")


def daemon_cpu(m):
    """The CPU seconds (user and system, every thread) the mount's
    daemon has used so far."""
    with open("/proc/%d/stat" % m.proc.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cold_sync(b, emu, exe, name, opts=(), floor=0):
    """One cold sync of emu's account by the driftfs at exe, into a fresh
    cache: (seconds, mount, the daemon's CPU seconds). floor: requests the
    sync asks for at least. The caller unmounts."""
    import helpers
    work = os.path.join(b.work, name)
    os.makedirs(work)
    emu.reset()
    saved = helpers.DRIFTFS
    helpers.DRIFTFS = exe
    try:
        t = time.perf_counter()
        m = Mount(emu.url, work, opts=["conns=4"] + list(opts), wait_sync=False)
    finally:
        helpers.DRIFTFS = saved
    b.m = m
    # The status is read only once the emulator has answered floor
    # requests: a read of it with the index runs a dbstat of the index
    # (src/store_search.c, 130 ms at 300k messages), and polling it all
    # along charged the sync with the index for the poll.
    wait_for(lambda: emu.total() >= floor, 3600, "the sync's requests", interval=0.2)
    wait_for(lambda: int(m.status().get("sync_passes", "0")) >= 1 and not index_building(m),
             3600, "a sync pass and the search index built", interval=0.02)
    return time.perf_counter() - t, m, daemon_cpu(m)


def bench_search_size(a, name, convs, per, contacts, attachments, base):
    """One account: every figure of the issue 13 table, on one account in
    one run."""
    out = {"name": name}
    with Setup() as b:
        emu = b.emulator("--conversations", convs, "--messages", per,
                         "--contacts", contacts, "--attachments", attachments)
        data = emu.data()
        phrase_ids, word_ids = plant_search(emu, data)
        floor = minimum_requests(emu.data(), 100) - 10
        nmsg = sum(len(v) for v in data["messages"].values()) + len(phrase_ids) + len(word_ids)
        out["desc"] = "%d conversations, %d messages, %d contacts, %d attachments" % (
            len(data["conversations"]), nmsg, len(data["contacts"]), len(data["attachments"]))
        del data
        print("\n%s: %s; '%s' planted in %d conversations, '%s' in %d" % (
            name, out["desc"], SEARCH_PHRASE, len(phrase_ids), SEARCH_WORD, len(word_ids)),
            flush=True)

        # Cold syncs, interleaved: without the index (base), with it. At
        # the mounts' usual rate=400 (tests/helpers.py) the API's pace
        # bounds both; at rate=10000 (the most driftfs takes) the CPU
        # does, which shows what indexing costs. The last one (with, at
        # 400) stays mounted for the queries.
        for rate in ("", "_fast"):
            for label in ("without", "with"):
                out["sync_" + label + rate], out["cpu_" + label + rate] = [], []
        for rate, opts in (("_fast", ("rate=10000",)), ("", ())):
            for r in range(a.search_sync_runs):
                for label, exe in (("without", base), ("with", DRIFTFS_EXE)):
                    if exe is None:
                        continue
                    took, m, cpu = cold_sync(b, emu, exe, "%s%s-%d" % (label, rate, r),
                                             opts, floor)
                    out["sync_" + label + rate].append(took)
                    out["cpu_" + label + rate].append(cpu)
                    print("  cold sync %s the index%s: %.1f s, CPU %.2f s (%s)" % (
                        label, ", rate=10000" if rate else "", took, cpu, load()), flush=True)
                    if not (label == "with" and not rate and r == a.search_sync_runs - 1):
                        m.unmount()
                        b.m = None
        m = b.m

        # The tmpfs copy of conversations/ (what rg searches).
        copy = os.path.join(b.shm, "conversations")
        subprocess.run(["rsync", "-a", m.p("conversations") + "/", copy + "/"], check=True)
        out["files"] = sum(len(f) for _, _, f in os.walk(copy))
        out["transcripts"] = sum(os.path.getsize(os.path.join(copy, c, "transcript.txt"))
                                 for c in os.listdir(copy)
                                 if os.path.exists(os.path.join(copy, c, "transcript.txt")))

        # The index: its size against the text it covers; and what a read
        # of the status that reports it costs.
        out["index"], out["text"] = index_sizes(m)
        times = []
        for _ in range(a.runs):
            t = time.perf_counter()
            m.status()
            times.append(time.perf_counter() - t)
        out["status_read"] = statistics.median(times)

        if not os.path.isdir(m.p("search")):
            out["missing"] = "search/ is not in this mount's root: this driftfs has no search"
            print("  FAIL: " + out["missing"])
            # rg alone, so that the planting is still checked.
            for needle, want in ((SEARCH_PHRASE, phrase_ids), (SEARCH_WORD, word_ids)):
                took, got = rg_conversations(copy, needle)
                print("  rg -l -F -uu '%s': %.1f ms, %d conversations%s" % (
                    needle, took * 1000, len(got),
                    "" if got == want else " (WRONG: %d planted)" % len(want)))
        else:
            for what, needle, query, want in (
                    ("phrase", SEARCH_PHRASE, '"%s"' % SEARCH_PHRASE, phrase_ids),
                    ("word", SEARCH_WORD, SEARCH_WORD, word_ids)):
                out[what] = bench_query(a, b, m, copy, needle, query, want)
            out["common"] = common_runs(a, m)
        m.unmount()
        b.m = None
        out["fts_db"] = fts_bytes_in_db(cache_file(m))
    return out


# Phrases of words in most messages: the index, which keeps no positions,
# finds every message holding both words, and each is checked. "docs the"
# is in none of the emulator's messages (every candidate checked, nothing
# found); "the docs" in many. The plain words ANDed are the same
# candidates unchecked.
COMMON_QUERIES = ('"docs the"', '"the docs"', 'docs the')


def common_runs(a, m):
    """ls search/<q>/conversations for COMMON_QUERIES, each run a name not
    looked up before: {query: (median seconds, names)}; names None when the
    lookup failed."""
    out = {}
    for query in COMMON_QUERIES:
        times, names = [], None
        for i in range(a.runs):
            took, got = ls_search(m, '%s OR absentword%dz%d' % (query, os.getpid(), i))
            if isinstance(got, OSError):
                print("  ls search/%s: %s" % (query, got))
                break
            times.append(took)
            names = len(got)
        out[query] = (statistics.median(times) if times else None, names)
    return out


def bench_query(a, b, m, copy, needle, query, want):
    """ls of a fresh query's conversations/ (each run a name not looked
    up before: the query ORed with a word that is nowhere) against rg over
    the copy, interleaved; both must name the conversations in want. Also
    the same ls on scripts/fuse_floor.c's search mode, which answers the
    same requests from nothing (as many names): what any FUSE filesystem
    pays for that ls here."""
    # As many names as the query lists (1000 at most: SEARCH_MAX_CONVS).
    n = min(max(len(want), 1), 1000)
    try:
        fm = FloorMount(fuse_floor_exe(), "search", n, 1,
                        tempfile.mkdtemp(prefix="floor-search-", dir=b.work))
    except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
        print("  (no do-nothing FUSE filesystem to time: %s)" % e)
        return query_runs(a, m, None, copy, needle, query, want)
    with fm:
        return query_runs(a, m, fm.mnt, copy, needle, query, want)


def query_runs(a, m, floor_mnt, copy, needle, query, want):
    """bench_query's runs; floor_mnt: the do-nothing filesystem, or None."""
    tl, tr, td, tf, tz, bad = [], [], [], [], [], []
    floor_bad = []      # the do-nothing filesystem's own failures: its figure only
    for i in range(a.runs + 1):
        q = '%s OR absentword%dx%d' % (query, os.getpid(), i)
        # The filesystem's part alone: a listdir in this process, of a
        # query of its own (no ls to start).
        qd = m.p("search", '%s OR absentword%dy%d' % (query, os.getpid(), i),
                 "conversations")
        t = time.perf_counter()
        try:
            os.listdir(qd)
        except OSError as e:
            bad.append("listdir %s: %s" % (qd, e))
            break
        dtook = time.perf_counter() - t
        took, got = ls_search(m, q)
        ztook = None
        if floor_mnt:
            t = time.perf_counter()
            try:
                p = subprocess.run(["ls", "-1", os.path.join(
                    floor_mnt, q.replace("/", "%2F"), "conversations")],
                    capture_output=True, text=True, timeout=60)
                ztook = time.perf_counter() - t
                if p.returncode != 0 or len(p.stdout.split()) != min(max(len(want), 1), 1000):
                    floor_bad.append(p.stderr.strip() or "%d names" % len(p.stdout.split()))
                    ztook = None
            except subprocess.TimeoutExpired:
                floor_bad.append("ls hung")
                ztook = None
        ftook = ls_floor(copy)
        if isinstance(got, OSError):
            bad.append("ls search/%s: %s" % (q, got))
            break
        if got != want:
            bad.append("search/%s/conversations: %d names, %d missing, %d extra" % (
                q, len(got), len(want - got), len(got - want)))
        rtook, rgot = rg_conversations(copy, needle)
        if rgot != want:
            bad.append("rg -l -F -uu '%s': %d conversations, %d missing, %d extra" % (
                needle, len(rgot), len(want - rgot), len(rgot - want)))
        if i:       # the first of each is a warm-up
            tl.append(took)
            tr.append(rtook)
            td.append(dtook)
            tf.append(ftook)
            if ztook is not None:
                tz.append(ztook)
    r = {"n": len(want), "load": load(), "bad": bad}
    if tl:
        r["ls"], r["rg"] = statistics.median(tl), statistics.median(tr)
        r["listdir"], r["floor"] = statistics.median(td), statistics.median(tf)
        r["floor_fs"] = statistics.median(tz) if tz else None
        print("  %-28s ls %6.2f ms (listdir %5.2f, do-nothing FUSE %s)  rg %7.1f ms  "
              "ratio %5.0fx  (%d conversations; %s)" % (
                  "'%s'" % query, r["ls"] * 1000, r["listdir"] * 1000,
                  "%5.2f" % (r["floor_fs"] * 1000) if r["floor_fs"] else "-",
                  r["rg"] * 1000, r["rg"] / r["ls"], len(want), r["load"]), flush=True)
    for line in bad[:5]:
        print("  FAIL: " + line)
    if floor_bad:
        print("  (the do-nothing FUSE filesystem's ls failed %d times: %s)" % (
            len(floor_bad), floor_bad[0]))
    return r


def bench_search(a):
    """Issue 13's table: search/ against rg over the tmpfs copy, the
    index's size, the cold sync with and without it; at each size of
    BENCH_SIZES ("bench" = the tree section's account; default bench,300k)."""
    if shutil.which("rg") is None:
        print("\nsearch: SKIP: rg is not installed (Debian's ripgrep: "
              "apt-get install -y ripgrep, or scripts/install-deps bench)")
        return
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    base, why = base_driftfs(root)
    if why:
        print("search: no driftfs without the index, so no sync ratio: " + why)
    sizes = [x.strip() for x in os.environ.get("BENCH_SIZES", SEARCH_DEFAULT_SIZES).split(",")
             if x.strip()]
    rows = []
    for name in sizes:
        if name == "bench":
            dims = (a.conversations, a.messages, a.contacts, a.attachments)
        elif name in SCALE_SIZES:
            dims = SCALE_SIZES[name] + (SCALE_CONTACTS, 100)
        else:
            print("BENCH_SIZES: unknown size %r (known: bench, %s)" % (
                name, ", ".join(SCALE_SIZES)))
            continue
        rows.append(bench_search_size(a, name, *dims, base))
    if not rows:
        return
    print()
    for r in rows:
        print("%s: %s; conversations/ holds %d files" % (r["name"], r["desc"], r["files"]))
    print("%-62s %s" % ("figure", "  ".join("%18s" % r["name"] for r in rows)))

    def line(what, target, cell):
        print("%-62s %s%s" % (what, "  ".join("%18s" % cell(r) for r in rows),
                              "   target " + target if target else ""))

    def ratio_cell(what, limit_ms=None, at=None):
        def cell(r):
            q = r.get(what)
            if r.get("missing") or not q or "ls" not in q:
                return "FAIL (no search)"
            x = q["rg"] / q["ls"]
            need = 1000 if r["name"] == "300k" else 100
            ok = x >= need and not q["bad"] and (r["name"] != "300k" or q["ls"] <= 0.02)
            return "%.0fx %s" % (x, mark(ok) if not q["bad"] else "WRONG")
        return cell
    line("rg -l -F -uu time / ls search/<phrase>/conversations time",
         ">= 100x (bench), >= 1000x and ls <= 20 ms (300k)", ratio_cell("phrase"))
    line("  ls search/<phrase>/conversations, cold query (ms)", "<= 20 ms at 300k",
         lambda r: "%.2f" % (r["phrase"]["ls"] * 1000) if "ls" in r.get("phrase", {})
         else "-")
    line("  the same, os.listdir in the bench's process: no ls (ms)", "",
         lambda r: "%.2f" % (r["phrase"]["listdir"] * 1000) if "ls" in r.get("phrase", {})
         else "-")
    line("  rg time / that listdir time", "",
         lambda r: "%.0fx" % (r["phrase"]["rg"] / r["phrase"]["listdir"])
         if "ls" in r.get("phrase", {}) else "-")
    line("  ls of an empty directory on tmpfs, the floor (ms)", "",
         lambda r: "%.2f" % (r["phrase"]["floor"] * 1000) if "ls" in r.get("phrase", {})
         else "-")
    line("  the same ls on a do-nothing FUSE filesystem (fuse_floor search) (ms)", "",
         lambda r: "%.2f" % (r["phrase"]["floor_fs"] * 1000)
         if r.get("phrase", {}).get("floor_fs") else "-")
    line("  rg time / that ls time: the most any FUSE filesystem shows here", "",
         lambda r: "%.0fx" % (r["phrase"]["rg"] / r["phrase"]["floor_fs"])
         if r.get("phrase", {}).get("floor_fs") else "-")
    line("  rg -l -F -uu '<phrase>' conversations/ on tmpfs, warm (ms)", "",
         lambda r: "%.1f" % (r["phrase"]["rg"] * 1000) if "ls" in r.get("phrase", {})
         else "-")
    for query in COMMON_QUERIES:
        line("  ls search/%s/conversations, common words (ms, names)" % query, "",
             lambda r, q=query: "%.1f (%d)" % (r["common"][q][0] * 1000, r["common"][q][1])
             if r.get("common", {}).get(q, (None,))[0] is not None else "-")
    line("the same for a word in 1 conversation of %d" % SEARCH_WORD_EVERY, "",
         lambda r: "%.0fx" % (r["word"]["rg"] / r["word"]["ls"])
         if "ls" in r.get("word", {}) else "-")
    line("  ls search/<word>/conversations (ms) / rg (ms)", "",
         lambda r: "%.1f / %.0f" % (r["word"]["ls"] * 1000, r["word"]["rg"] * 1000)
         if "ls" in r.get("word", {}) else "-")

    # The index's bytes are the cache file's own (dbstat of every FTS5
    # table and its shadow tables, after the unmount): the status's figure
    # is read at most once a minute (src/store_search.c), and the first
    # read of it came before the sync had indexed anything. The text's
    # bytes are the writers' count (the status's search_text_bytes):
    # message text as rendered, tags, the contacts' four fields.
    def index_cell(r):
        if r["fts_db"] is None or not r["text"]:
            return "FAIL (no index)"
        x = r["fts_db"] / r["text"]
        return "%.2f %s" % (x, mark(x <= 0.5))
    line("index bytes (dbstat) / indexed text bytes (status)", "<= 0.5", index_cell)
    line("  a read of .driftfs/status (ms)", "",
         lambda r: "%.1f" % (r["status_read"] * 1000))
    line("  index bytes (status, maybe a minute old; dbstat) (MiB)", "",
         lambda r: "%s; %s" % ("%.1f" % (r["index"] / 2**20) if r["index"] is not None
                               else "-", "%.1f" % (r["fts_db"] / 2**20)
                               if r["fts_db"] is not None else "-"))
    line("  indexed text (status); transcript.txt bytes (MiB)", "",
         lambda r: "%s; %.1f" % ("%.1f" % (r["text"] / 2**20) if r["text"] else "-",
                                 r["transcripts"] / 2**20))

    def sync_cell(rate):
        def cell(r):
            if not r["sync_without" + rate]:
                return "- (no base)"
            if r.get("missing"):
                return "n/a (no index)"
            x = (statistics.median(r["sync_with" + rate]) /
                 statistics.median(r["sync_without" + rate]))
            return "%.3f %s" % (x, mark(x <= 1.1))
        return cell

    def sync_runs(rate):
        return lambda r: "%s; %s" % ("/".join("%.1f" % t for t in r["sync_with" + rate]),
                                     "/".join("%.1f" % t for t in r["sync_without" + rate]))
    line("cold sync with the index / without, rate=400 (medians)", "<= 1.1", sync_cell(""))
    line("  with; without (s, each run)", "", sync_runs(""))
    line("the same at rate=10000: CPU-bound", "<= 1.1", sync_cell("_fast"))
    line("  with; without (s, each run)", "", sync_runs("_fast"))

    # The daemon's CPU seconds: what the index costs, whatever else the
    # machine runs (the wall time of a CPU-bound sync moves with the load
    # more than with the index).
    def cpu_cell(r):
        if not r["cpu_without_fast"] or r.get("missing"):
            return "-"
        return "%.3f (%.2f / %.2f s)" % (
            statistics.median(r["cpu_with_fast"]) / statistics.median(r["cpu_without_fast"]),
            statistics.median(r["cpu_with_fast"]), statistics.median(r["cpu_without_fast"]))
    line("  the daemon's CPU with / without, rate=10000 (medians)", "", cpu_cell)
    print("\nrg runs warm (the copy is on tmpfs, whose pages cannot be dropped); each "
          "ls is a query not looked up before; %s; base driftfs %s" % (load(), base))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--conversations", type=int, default=4000)
    ap.add_argument("--messages", type=int, default=10)
    ap.add_argument("--contacts", type=int, default=2500)
    ap.add_argument("--attachments", type=int, default=100)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--big", type=int, default=100000,
                    help="entries of the one-directory benchmark")
    ap.add_argument("--rate", type=float, default=20, help="the rate-limited API's limit")
    ap.add_argument("--rss-conversations", type=int, default=3000)
    ap.add_argument("--rss-messages", type=int, default=100,
                    help="mean messages a conversation in the RSS benchmark")
    ap.add_argument("--floor-files", type=int, default=16000,
                    help="files of the FUSE floor benchmark")
    ap.add_argument("--search-sync-runs", type=int, default=2,
                    help="cold syncs with and without the index, each, per size")
    ap.add_argument("--only", choices=("tree", "bigdir", "rate", "rss", "floor", "scale",
                                       "search"),
                    action="append",
                    help="run only these benchmarks (default: all)")
    a = ap.parse_args()
    why = fuse_unavailable()
    if why:
        print("SKIP: cannot benchmark: " + why)
        return 0
    print("machine: %s, %d cores, %s" % (platform.machine(), os.cpu_count(),
                                         platform.platform()))
    print("medians of %d interleaved runs; copy = the same tree on tmpfs" % a.runs)
    only = a.only or ["tree", "bigdir", "rate", "rss", "floor", "scale", "search"]
    if "tree" in only:
        bench_tree(a)
    if "bigdir" in only:
        bench_bigdir(a)
    if "rate" in only:
        bench_rate(a)
    if "rss" in only:
        bench_rss(a)
    if "floor" in only:
        bench_floor(a)
    if "scale" in only:
        bench_scale(a)
    if "search" in only:
        bench_search(a)
    return 0


def bench_tree(a):
    """The whole tree of a mid-sized account: every workload of the table."""
    with Setup() as b:
        shm = b.shm
        emu = b.emulator("--conversations", a.conversations, "--messages", a.messages,
                         "--contacts", a.contacts, "--attachments", a.attachments)
        data = emu.data()
        nmsg = sum(len(v) for v in data["messages"].values())
        emu.reset()
        t = time.perf_counter()
        m = b.mount("conns=4")
        cold = time.perf_counter() - t
        requests = emu.total()
        minimum = minimum_requests(data, conv_page_size(emu, data))

        copy = os.path.join(shm, "copy")
        subprocess.run(["rsync", "-a", m.path + "/", copy + "/"], check=True)
        nfiles = sum(len(f) for _, _, f in os.walk(copy))
        emu.reset()

        workloads = [
            ("ls -lR", lambda root: run("ls -lR %s" % root)),
            ("cat every file", lambda root: run(
                "find %s -type f -exec cat {} + " % root)),
            ("grep -r", lambda root: run("grep -r '%s' %s/conversations" % (PHRASE, root))),
            ("find -printf '%s %T@'", lambda root: run("find %s -printf '%%s %%T@\\n'" % root)),
            ("du -s", lambda root: run("du -s %s" % root)),
            ("rsync -a (first pass)", None),
            ("rsync -a (second pass)", lambda root: run(
                "rsync -a %s/ %s/" % (root, os.path.join(shm, "dst-" + os.path.basename(root))))),
        ]
        results = []
        for name, fn in workloads:
            tm, tc = [], []
            for i in range(a.runs):
                for root, acc in ((m.path, tm), (copy, tc)):
                    if fn is None:
                        dst = os.path.join(shm, "first-%d" % i)
                        acc.append(run("rsync -a %s/ %s/" % (root, dst)))
                        shutil.rmtree(dst, ignore_errors=True)
                    else:
                        acc.append(fn(root))
            results.append((name, statistics.median(tm), statistics.median(tc)))
        warm_requests = emu.total()
        rss = peak_rss_kib(m.proc.pid)
        first_ls = first_ls_ms(m, a.runs)
        # The same cache mounted read-only (-o ro): files open with no
        # round trip to the daemon (see driftfs(1), ro under OPTIONS).
        m.unmount()
        m.opts.append("ro")
        m.start()
        for name, fn in workloads:
            if fn is None or name.startswith("rsync"):
                continue
            tm, tc = side_by_side(a.runs, lambda: fn(m.path), lambda: fn(copy))
            results.append((name + " (-o ro)", tm, tc))
        cache = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(m.cache)
                    for f in fs)
        tree = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(copy)
                   for f in fs)

        print("\naccount: %d conversations, %d messages, %d contacts, "
              "%d attachments; %d files" % (len(data["conversations"]), nmsg,
                                            len(data["contacts"]), len(data["attachments"]),
                                            nfiles))
        print("%-26s %10s %10s %8s" % ("workload", "driftfs s", "tmpfs s", "ratio"))
        for name, tm, tc in results:
            ratio_line(name, tm, tc)
        print()
        print("cold sync: %.1f s, %d API requests; minimum the paging allows %d "
              "(ratio %.3f)" % (cold, requests, minimum, requests / minimum))
        print("API requests during all warm workloads: %d" % warm_requests)
        print("daemon peak RSS: %.1f MiB" % (rss / 1024))
        print("mount with a warm cache until the first ls answers: %.1f ms" % first_ls)
        print("cache on disk %.1f MiB / rendered tree %.1f MiB (ratio %.2f)" % (
            cache / 2**20, tree / 2**20, cache / tree if tree else float("nan")))


if __name__ == "__main__":
    sys.exit(main())
