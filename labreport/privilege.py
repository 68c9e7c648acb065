"""Files a user names are read with that user's rights, also under sudo.

``sudo labreport import --ip-netns /etc/shadow`` must not read /etc/shadow: collection
needs root, but the files given on the command line are the user's. Under sudo (euid 0
and ``SUDO_UID``/``SUDO_GID`` set) :func:`open_as_invoking_user` opens the file after
switching the effective uid, gid and supplementary groups to the invoking user's, and
switches back at once; the open file descriptor is then read as usual. Without sudo it
is a plain open. The error for a file the user may not read says so, and nothing of the
file is ever read.
"""

from __future__ import annotations

import contextlib
import os
import pwd
from typing import BinaryIO, Iterator, Optional


def invoking_user() -> Optional[tuple[int, int, str]]:
    """(uid, gid, name) of the user who ran sudo, when running as root under sudo."""
    if os.geteuid() != 0:
        return None
    uid, gid = os.environ.get("SUDO_UID", ""), os.environ.get("SUDO_GID", "")
    if not (uid.isdigit() and gid.isdigit()) or int(uid) == 0:
        return None
    try:
        name = pwd.getpwuid(int(uid)).pw_name
    except KeyError:
        name = os.environ.get("SUDO_USER") or uid
    return int(uid), int(gid), name


@contextlib.contextmanager
def as_invoking_user() -> Iterator[Optional[str]]:
    """Run the block with the invoking user's effective ids (under sudo); yields the user
    name, or None when not under sudo (nothing changed)."""
    who = invoking_user()
    if who is None:
        yield None
        return
    uid, gid, name = who
    saved_groups = os.getgroups()
    try:
        groups = os.getgrouplist(name, gid)
    except (KeyError, OSError):
        groups = [gid]
    os.setgroups(groups)
    os.setegid(gid)
    os.seteuid(uid)
    try:
        yield name
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(saved_groups)


def open_for_user(path: str) -> tuple[BinaryIO, Optional[str]]:
    """``open(path, "rb")`` with the invoking user's rights (see the module doc). Returns
    the file and the user name when the rights were dropped. Raises OSError as open does."""
    with as_invoking_user() as name:
        fh = open(path, "rb")  # noqa: SIM115 (returned to the caller, who closes it)
    return fh, name
