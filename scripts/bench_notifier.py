#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Lookup latency while the invalidation notifier works (issue 10).

Seeds an account, mounts it, walks the whole tree (the kernel then holds a
node for every entry), changes --changed conversations in the emulator and
asks for a sync. While that sync and its invalidations run, a loop looks up
names that reach the daemon (a fresh, absent name in a conversation
directory each time) and records how long each took. Nothing asserted.

  DRIFTFS=build/default/driftfs python3 scripts/bench_notifier.py
"""
import argparse
import os
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from helpers import Emulator, Mount  # noqa: E402


def stats(m):
    out = {}
    for line in m.read(".driftfs", "stats", mode="r").splitlines():
        k, v = line.rsplit(" ", 1)
        out[k] = int(v)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conversations", type=int, default=1500)
    ap.add_argument("--messages", type=int, default=10)
    ap.add_argument("--changed", type=int, default=100)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-notifier-")
    emu = Emulator("--conversations", str(a.conversations), "--contacts",
                   str(a.conversations // 2), "--messages", str(a.messages),
                   workdir=os.path.join(work, "emu"))
    m = None
    try:
        m = Mount(emu.url, work, opts=["timeout=30"])
        t = time.perf_counter()
        nodes = sum(len(ds) + len(fs) for _, ds, fs in os.walk(m.path))
        print("walk: %d entries in %.1f s" % (nodes, time.perf_counter() - t))
        convs = [c["id"] for c in emu.data()["conversations"]]
        emu.mutate(**{"op": "add_message", "conversationId": convs[0]})
        for cid in convs[:a.changed]:
            emu.mutate(op="add_message", conversationId=cid, body="<p>x</p>")
        before = stats(m)
        done = threading.Event()

        def sync():
            m.ctl("sync")
            done.set()
        th = threading.Thread(target=sync)
        lat = []
        probe = m.p("conversations", str(convs[-1]))
        th.start()
        i = 0
        # The sync, then 2 s for the notifier to drain its queue.
        end = None
        while end is None or time.monotonic() < end:
            if end is None and done.is_set():
                end = time.monotonic() + 2
            i += 1
            t = time.perf_counter()
            try:
                os.stat(os.path.join(probe, "absent-%d" % i))
            except FileNotFoundError:
                pass
            lat.append((time.perf_counter() - t) * 1000)
        th.join()
        after = stats(m)
        lat.sort()
        print("lookups during sync+notify: n=%d median %.3f ms p99 %.2f ms "
              "max %.1f ms" % (len(lat), statistics.median(lat),
                               lat[int(len(lat) * 0.99)], lat[-1]))
        for k in ("notifier visits", "notifier queries", "kernel invalidations"):
            print("%s: %d" % (k, after.get(k, 0) - before.get(k, 0)))
    finally:
        if m:
            m.unmount()
        emu.stop()


if __name__ == "__main__":
    main()
