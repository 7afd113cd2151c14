# SPDX-License-Identifier: MIT
"""Small findings of the audit against DESIGN.md, each on a real mount:
.driftfs/stats never names a tag (DELETE /contacts/{id}/tags/{name}, also
for a tag that looks like an API word); symlink() and link() in the tree
are EPERM like every other refused namespace operation, not ENOSYS; the
errors file says rmdir for an rmdir, and one failed ctl write(2) is one
line."""
import errno
import os

import pytest


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def errors(mount):
    return mount.read(".driftfs", "errors", mode="r").splitlines()


def test_stats_endpoint_hides_tag_names(mount, emulator):
    data = emulator.data()
    convs = {v["contactId"] for v in data["conversations"]}
    c = next(x for x in data["contacts"] if x["id"] in convs)
    p = mount.p("contacts", str(c["id"]), "tags")
    lines = open(p).read().splitlines()
    write(p, "\n".join(lines + ["new"]) + "\n")
    write(p, "\n".join(lines) + "\n")
    assert any(r["method"] == "DELETE" and r["path"].endswith("/tags/new")
               for r in emulator.requests())
    stats = mount.read(".driftfs", "stats", mode="r")
    assert "api DELETE /contacts/{id}/tags/{name} 200" in stats, stats
    assert "tags/new" not in stats


@pytest.mark.parametrize("where", [(), ("conversations",), ("contacts",)])
def test_symlink_and_link_are_eperm(mount, emulator, where):
    with pytest.raises(OSError) as e:
        os.symlink("target", mount.p(*where, "lnk"))
    assert e.value.errno == errno.EPERM
    cid = str(emulator.data()["conversations"][0]["id"])
    with pytest.raises(OSError) as e:
        os.link(mount.p("conversations", cid, "transcript.txt"),
                mount.p(*where, "hard"))
    assert e.value.errno == errno.EPERM


def test_errors_say_rmdir_and_one_line_a_ctl_write(mount, emulator):
    cid = str(emulator.data()["conversations"][0]["id"])
    with pytest.raises(OSError) as e:
        os.rmdir(mount.p("conversations", cid))
    assert e.value.errno == errno.EPERM
    assert any(l.endswith("rmdir conversations/%s: the API cannot delete "
                          "this" % cid) for l in errors(mount)), errors(mount)
    assert not any("unlink conversations/%s" % cid in l for l in errors(mount))
    fd = os.open(mount.p(".driftfs", "ctl"), os.O_WRONLY)
    try:
        with pytest.raises(OSError) as e:
            os.write(fd, b"frobnicate\n")
        assert e.value.errno == errno.EINVAL
    finally:
        os.close(fd)
    assert sum("unknown command 'frobnicate'" in l for l in errors(mount)) == 1


def test_a_refused_write_is_one_line(mount, emulator):
    """A write the API refuses (409 on contacts/new) fails its close()
    with the mapped errno and leaves one line in .driftfs/errors that
    names the call and the API's message, not one from the HTTP layer and
    another from the outbox."""
    before = len(errors(mount))
    emulator.add_fault(kind="status", status=409, count=1, method="POST",
                       path="^/contacts$")
    with pytest.raises(OSError) as e:
        write(mount.p("contacts", "new"),
              '{"attributes": {"email": "dup@example.com"}}\n')
    assert e.value.errno == errno.EEXIST
    new = errors(mount)[before:]
    assert len(new) == 1, new
    assert "POST /contacts" in new[0] and "409" in new[0], new
