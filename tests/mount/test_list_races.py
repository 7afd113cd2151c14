# SPDX-License-Identifier: MIT
"""A sync pass's list, fetched before its transaction, never undoes or
prunes an edit made while it was fetched."""
import json
import os

from helpers import wait_for


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def account_name(a):
    return a["accountId"].replace("%", "%25").replace("/", "%2F") + ".json"


def during_a_slow_list(emulator, m, path, edit):
    """Runs a pass whose list at path (a regex) is read at once but
    answered 3 s later, and edit() while it waits; returns once the pass
    is over."""
    emulator.add_fault(kind="stall", seconds=3, process_first=True, path=path)
    t, result = m.ctl_in_background("sync")
    try:
        wait_for(lambda: not emulator.admin("GET", "faults")["pending"], 20,
                 "the list to be read")
        edit()
        assert t.is_alive(), "the list came back before the edit: no race"
    finally:
        t.join(60)
    assert result.get("ok"), result


def cached(mounts, m, tmp_path):
    """The cache m leaves behind, mounted offline: what the pass stored,
    with no kernel cache of the first mount in the way."""
    m.unmount()
    return mounts(m.api_url, str(tmp_path / "after"), opts=["offline"],
                  cache_dir=m.cache, wait_sync=False)


def test_a_user_edited_during_the_users_list_stays(emulator, mounts,
                                                    tmp_path):
    # The list holds the user as it was; the edit's refetch stores the new
    # one. The pass must neither store its old copy over it nor prune it
    # (it did: skipped as written meanwhile, then deleted as unseen).
    m = mounts(emulator.url, str(tmp_path / "a"))
    u = next(x for x in emulator.data()["users"] if not x.get("bot"))
    p = m.p("users", "%d.json" % u["id"])
    obj = json.loads(open(p).read())
    obj["alias"] = "Edited Mid-List"

    during_a_slow_list(emulator, m, "^/users/list$",
                       lambda: write(p, json.dumps(obj)))
    server = next(x for x in emulator.data()["users"] if x["id"] == u["id"])
    assert server["alias"] == "Edited Mid-List"
    after = cached(mounts, m, tmp_path)
    assert "%d.json" % u["id"] in os.listdir(after.p("users"))
    assert after.json("users", "%d.json" % u["id"])["alias"] == \
        "Edited Mid-List"


def test_an_account_edited_during_the_accounts_list_stays(emulator, mounts,
                                                          tmp_path):
    # The edit's refresh of the accounts stores the new name; the pass's
    # older list must not be stored over it afterwards.
    m = mounts(emulator.url, str(tmp_path / "a"))
    a = next(x for x in emulator.data()["accounts"] if not x["deleted"])
    p = m.p("accounts", account_name(a))
    obj = json.loads(open(p).read())
    obj["name"] = "Renamed Mid-List Ltd"

    during_a_slow_list(emulator, m, "^/accounts$",
                       lambda: write(p, json.dumps(obj)))
    after = cached(mounts, m, tmp_path)
    assert account_name(a) in os.listdir(after.p("accounts"))
    assert after.json("accounts", account_name(a))["name"] == \
        "Renamed Mid-List Ltd"
