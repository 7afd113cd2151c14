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
from helpers import Emulator, Mount, fuse_unavailable, wait_for  # noqa: E402

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


def bench_floor(a):
    """`cat` of many small files on a do-nothing FUSE filesystem
    (scripts/fuse_floor.c) in each open mode, against tmpfs: the least a
    round trip per open costs on this machine, whatever the daemon does."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    exe = os.path.join(root, "build", "bench", "fuse_floor")
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"], check=True,
                           capture_output=True, text=True).stdout.split()
    subprocess.run(["cc", "-O2", "-Wall", "-o", exe,
                    os.path.join(root, "scripts", "fuse_floor.c")] + flags, check=True)
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
            os.makedirs(mnt)
            proc = subprocess.Popen([exe, mode, str(n), str(size), mnt])
            try:
                deadline = time.time() + 20
                while not os.path.ismount(mnt) and time.time() < deadline:
                    time.sleep(0.05)
                tm, tc = side_by_side(a.runs,
                                      lambda: run("find %s -type f -exec cat {} +" % mnt),
                                      lambda: run("find %s -type f -exec cat {} +" % copy))
                ratio_line("cat, " + mode, tm, tc)
                print("    %s: %.1f us a file over tmpfs" % (what, (tm - tc) / n * 1e6))
            finally:
                subprocess.run(["fusermount3", "-u", mnt], capture_output=True)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    subprocess.run(["fusermount3", "-uz", mnt], capture_output=True)
                    proc.kill()
                    proc.wait()


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
    from helpers import cache_file
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
    ap.add_argument("--only", choices=("tree", "bigdir", "rate", "rss", "floor", "scale"),
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
    only = a.only or ["tree", "bigdir", "rate", "rss", "floor", "scale"]
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
