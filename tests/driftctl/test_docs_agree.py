# SPDX-License-Identifier: MIT
"""One truth per fact: the options that `driftfs --help`, `driftctl
--help`, man/driftfs.1, man/driftctl.1 and README.md name are the same
sets, the options both programs share are named alike, and the two man
pages' EXIT STATUS sections are the same text.

Where each list is read:
  driftfs --help   every "-o NAME" after the "driftfs options" line
  driftctl --help  every "--NAME" after the "options" line
  man/driftfs.1    the .B/.BI/.BR word that follows each .TP or .TQ in
                   ".SS driftfs options" (up to the next .SH or .SS)
  man/driftctl.1   every "\\-\\-NAME" in a .TP/.TQ line of ".SH OPTIONS"
  README.md        the first Markdown table whose header's first cell is
                   "option": every `name` in backticks in the first cell
                   of each of its rows; it names the options of both
"""
import os
import re
import subprocess

from ctlkit import DRIFTCTL
from helpers import DRIFTFS, ROOT

# Options one program has and the other has not, by design.
FS_ONLY = {"ro", "uid", "gid", "umask", "fsname"}      # of a mount
CTL_ONLY = {"account",          # driftfs takes ACCOUNT as an argument
            "client_id", "redirect_uri",                # login's
            "verbose", "help", "version"}               # general


def read(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
        return f.read()


def help_text(prog):
    p = subprocess.run([prog, "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout


def driftfs_help():
    text = help_text(DRIFTFS)
    part = text[text.index("\ndriftfs options"):]
    return set(re.findall(r"-o ([a-z_]+)", part))


def driftctl_help():
    text = help_text(DRIFTCTL)
    part = text[text.index("\noptions"):]
    return {n.replace("-", "_") for n in re.findall(r"--([a-z][a-z-]*)", part)}


def man_section(text, start):
    a = text.index(start + "\n")
    nxt = [m.start() for m in re.finditer(r"^\.S[HS] ", text[a + 1:], re.M)]
    return text[a:a + 1 + nxt[0]] if nxt else text[a:]


def tp_lines(section):
    """The line after each .TP and each .TQ line."""
    lines = section.split("\n")
    return [lines[i + 1] for i, line in enumerate(lines[:-1])
            if line in (".TP", ".TQ")]


def driftfs_man():
    sec = man_section(read("man", "driftfs.1"), ".SS driftfs options")
    names = set()
    for line in tp_lines(sec):
        m = re.match(r"\.(?:B|BI|BR) ([a-z_]+)", line)
        if m:
            names.add(m.group(1))
    return names


def driftctl_man():
    sec = man_section(read("man", "driftctl.1"), ".SH OPTIONS")
    names = set()
    for line in tp_lines(sec):
        names |= {n.replace("\\-", "-").replace("-", "_")
                  for n in re.findall(r"\\-\\-((?:[a-z]|\\-)+)", line)}
    return names


def readme_table():
    lines = read("README.md").split("\n")
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and cells[0].lower() == "option":
            names = set()
            for row in lines[i + 2:]:
                if not row.lstrip().startswith("|"):
                    break
                first = row.strip().strip("|").split("|")[0]
                names |= set(re.findall(r"`([a-z_]+)", first))
            return names
    raise AssertionError("README.md has no options table (a Markdown table "
                         "whose header's first cell is 'option')")


def test_driftfs_help_and_man_name_the_same_options():
    h, m = driftfs_help(), driftfs_man()
    assert h == m, "only in --help: %s; only in driftfs.1: %s" % (
        sorted(h - m), sorted(m - h))
    assert {"api_url", "ca_file", "log_level", "uid", "fsname"} <= h


def test_driftctl_help_and_man_name_the_same_options():
    h, m = driftctl_help(), driftctl_man()
    assert h == m, "only in --help: %s; only in driftctl.1: %s" % (
        sorted(h - m), sorted(m - h))
    assert {"api_url", "account", "log_level"} <= h


def test_both_programs_share_their_options():
    fs, ctl = driftfs_help() - FS_ONLY, driftctl_help() - CTL_ONLY
    assert fs == ctl, "only driftfs: %s; only driftctl: %s" % (
        sorted(fs - ctl), sorted(ctl - fs))


def test_readme_options_table_names_every_option():
    """README's one table names every option of both programs (the
    general -h, -V, -v, -f, -d, -s are written with their dashes, which
    the table reader skips)."""
    r = readme_table()
    h = driftfs_help() | (driftctl_help() - {"verbose", "help", "version"})
    assert r == h, "only in README.md: %s; only in --help: %s" % (
        sorted(r - h), sorted(h - r))


def test_exit_status_is_one_table():
    fs = man_section(read("man", "driftfs.1"), ".SH EXIT STATUS")
    ctl = man_section(read("man", "driftctl.1"), ".SH EXIT STATUS")
    assert fs == ctl
    for status in range(7):
        assert "\n.B %d\n" % status in fs
