# SPDX-License-Identifier: MIT
"""What one open file holds in the daemon, on a real mount: handles of
scratch files, two threads on one descriptor, the bytes a write may
carry (no NUL), and appends (>>) to files whose size is not their
buffer's."""
import errno
import json
import os
import subprocess
import threading
import time

import pytest


def requests_after(emulator, seq, method=None):
    return [r for r in emulator.requests()
            if r["seq"] > seq and (method is None or r["method"] == method)]


def last_seq(emulator):
    reqs = emulator.requests()
    return reqs[-1]["seq"] if reqs else 0


def test_scratch_files_left_at_unmount_are_freed(mounts, emulator, tmp_path):
    """A scratch file still named at unmount is freed by the daemon (the
    kernel sends no FORGET after the session ends); an O_EXCL create of
    an existing name is refused by the kernel's own lookup. The mounts
    fixture fails on any sanitizer or valgrind report at unmount."""
    m = mounts(emulator.url, str(tmp_path))
    cid = str(emulator.data()["conversations"][0]["id"])
    d = m.p("conversations", cid)
    for name in ("draft.txt", "draft.txt~", ".draft.swp"):
        fd = os.open(os.path.join(d, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.write(fd, b"kept in memory\n")
        os.close(fd)
    for name in ("draft.txt", "reply", "conversation.json"):
        with pytest.raises(OSError) as e:
            os.open(os.path.join(d, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        assert e.value.errno == errno.EEXIST
    with open(os.path.join(d, "draft.txt"), "rb") as f:
        assert f.read() == b"kept in memory\n"
    m.unmount()
    assert not m.suspicious()


def test_read_and_write_race_on_one_descriptor(mount, emulator):
    """Two threads on one O_RDWR descriptor of contact.json (direct I/O,
    so every read reaches the daemon): one reads while the other grows
    the buffer (reallocating it) and truncates it. A read replied from
    the buffer after dropping its lock read freed memory (ASan:
    heap-use-after-free; the daemon aborts). Every read must see bytes
    the file held, and the file ends as it began: nothing is sent."""
    c = emulator.data()["conversations"][0]["contactId"]
    p = mount.p("contacts", str(c), "contact.json")
    orig = mount.read("contacts", str(c), "contact.json")
    seq = last_seq(emulator)
    bad = []
    deadline = time.monotonic() + 8
    rounds = 0
    while time.monotonic() < deadline and not bad:
        rounds += 1
        fd = os.open(p, os.O_RDWR)
        stop = threading.Event()

        def reader():
            try:
                while not stop.is_set():
                    for off in (0, 4096, 65536):
                        got = os.pread(fd, 131072, off)
                        # Only what the writer put there: the original
                        # bytes, or 'x' filler.
                        if got not in (orig[off:off + len(got)],
                                       b"x" * len(got)):
                            bad.append(("read", off, got[:40]))
                            return
            except OSError as e:
                bad.append(("read", e))
        t = threading.Thread(target=reader)
        t.start()
        try:
            size = 4096
            while size <= (1 << 20):
                os.ftruncate(fd, 0)
                os.pwrite(fd, b"x" * size, 0)
                size *= 2
            os.ftruncate(fd, 0)
            os.pwrite(fd, orig, 0)
        except OSError as e:
            bad.append(("write", e))
        finally:
            stop.set()
            t.join()
            os.close(fd)
    assert not bad, bad
    assert mount.proc.poll() is None, "the daemon died: %s" % mount.suspicious()
    assert requests_after(emulator, seq, "PATCH") == []
    assert mount.read("contacts", str(c), "contact.json") == orig
    assert rounds > 1


def close_error(path, data, flags=os.O_WRONLY | os.O_TRUNC):
    """Writes data in one write(2); the errno close() fails with, or 0."""
    fd = os.open(path, flags)
    try:
        os.write(fd, data)
    finally:
        try:
            os.close(fd)
        except OSError as e:
            return e.errno
    return 0


@pytest.mark.parametrize("name,data", [
    ("reply", b"hello\0world\n"),
    ("note", b"internal\0 only\n"),
    ("messages/new", b'{"type": "chat", "body": "cut\0here"}'),
    ("messages/new", b'{"type": "chat", "body": "cut\\u0000here"}'),
])
def test_nul_byte_refused_not_cut(mount, emulator, name, data):
    """A NUL byte in a reply, a note or a new message's body cut the
    message there, silently: close() now fails with EINVAL, nothing is
    sent, and .driftfs/errors says why."""
    cid = str(emulator.data()["conversations"][0]["id"])
    seq = last_seq(emulator)
    p = mount.p("conversations", cid, *name.split("/"))
    assert close_error(p, data) == errno.EINVAL
    assert requests_after(emulator, seq, "POST") == []
    errors = mount.read(".driftfs", "errors", mode="r")
    assert "NUL" in errors and name in errors
    # The same text without it goes through.
    assert close_error(p, data.replace(b"\\u0000", b"").replace(b"\0", b"")) == 0
    assert len(requests_after(emulator, seq, "POST")) == 1


def test_nul_escape_refused_in_a_new_conversation(mount, emulator):
    seq = last_seq(emulator)
    body = b'{"email": "lead@example.com", "message": "a\\u0000b"}'
    assert close_error(mount.p("conversations", "new"), body) == errno.EINVAL
    assert requests_after(emulator, seq, "POST") == []
    # An escaped backslash before u0000 is text, not a NUL.
    body = b'{"email": "lead@example.com", "message": "C:\\\\u0000"}'
    assert close_error(mount.p("conversations", "new"), body) == 0
    posts = requests_after(emulator, seq, "POST")
    assert [json.loads(x["body"])["message"]["body"] for x in posts] == ["C:\\u0000"]


def shell_append(path, text):
    subprocess.run(["sh", "-c", 'printf "%s" "$1" >> "$2"', "sh", text, path],
                   check=True, capture_output=True)


def append_fd(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


@pytest.mark.parametrize("how", [shell_append, append_fd])
def test_append_to_new_files(mount, emulator, how):
    """>> to a `new` file: its size shows the id of what it last created
    (so `cat new` reads it back), and an append was written at that
    offset into an empty buffer, behind NUL bytes that made the JSON
    invalid. Appends now go at the end of the bytes written."""
    data = emulator.data()
    cid = str(data["conversations"][1]["id"])
    cases = [
        (("contacts", "new"),
         lambda i: {"email": "append%d@example.com" % i},
         lambda i: {"attributes": {"email": "append%d@example.com" % i}}),
        (("conversations", "new"),
         lambda i: {"email": "lead@example.com", "message": "m%d" % i},
         lambda i: {"email": "lead@example.com",
                    "message": {"body": "m%d" % i, "attributes": {}}}),
        (("conversations", cid, "messages", "new"),
         lambda i: {"type": "chat", "body": "b%d" % i},
         lambda i: {"type": "chat", "body": "b%d" % i})]
    for parts, written, sent in cases:
        ids = set()
        for i in range(3):
            seq = last_seq(emulator)
            # After the first, the file shows an id: a size the buffer
            # of the next open does not have.
            how(mount.p(*parts), json.dumps(written(i)))
            posts = requests_after(emulator, seq, "POST")
            assert [json.loads(x["body"]) for x in posts] == [sent(i)], parts
            new_id = mount.read(*parts, mode="r").strip()
            assert new_id.isdigit(), (parts, new_id)
            ids.add(new_id)
        assert len(ids) == 3


@pytest.mark.parametrize("how", [shell_append, append_fd])
def test_append_to_reply_and_note_twice(mount, emulator, how):
    """Appends to reply and note one after another: the kernel takes the
    size of the last append as the file's, and the next one was written
    behind it."""
    cid = str(emulator.data()["conversations"][0]["id"])
    seq = last_seq(emulator)
    for name in ("reply", "note", "reply", "note"):
        how(mount.p("conversations", cid, name), name + " appended\n")
    posts = requests_after(emulator, seq, "POST")
    assert [json.loads(x["body"]) for x in posts] == [
        {"type": "chat", "body": "reply appended"},
        {"type": "private_note", "body": "note appended"}] * 2
