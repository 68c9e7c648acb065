"""``--bootstrap``: install this very labreport on a node that lacks it, over the same SSH
connection, into a virtualenv of the remote user's own (nothing system-wide).

1. Locally, once per run: the wheel given (``--bootstrap-wheel``), else one built from the
   source this labreport runs from (``pip wheel --no-deps``).
2. On the node, in ``~/.cache/labreport`` (or the directory given): if
   ``venv/bin/labreport --version`` already prints this version
   and the wheel's content hash is the one recorded there, nothing is done.
   Otherwise the wheel is streamed over the session's stdin (no SFTP subsystem needed),
   its sha256 checked, ``python3 -m venv --system-site-packages venv`` created (Python
   >= 3.10 is checked first) and the wheel pip-installed into it; pip fetches only the
   dependencies the node's Python does not already have, from the node's own index.
3. The collector then runs as ``<dir>/venv/bin/labreport``.

Each failure says what to do (``NodeFailure``): no python3, too old, no venv module
(Debian: ``apt install python3-venv``), pip unable to reach an index (offline node:
install the dependencies there first, or copy a wheelhouse).
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:  # asyncssh is imported where a connection is made
    import asyncssh

import labreport
from labreport.errors import TransportError

DEFAULT_DIR = ".cache/labreport"  # relative to the remote user's home (where ssh sessions start)


def source_root() -> Optional[Path]:
    """The project directory this labreport runs from, when it is a source checkout."""
    root = Path(labreport.__file__).resolve().parent.parent
    pp = root / "pyproject.toml"
    if pp.exists() and 'name = "labreport"' in pp.read_text(errors="replace"):
        return root
    return None


def build_wheel(dest: Path) -> Path:
    src = source_root()
    if src is None:
        raise TransportError("--bootstrap needs a labreport wheel: this labreport is not a source checkout; "
                             "build one with `pip wheel --no-deps <labreport source>` and pass --bootstrap-wheel FILE")
    cp = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                         "--disable-pip-version-check", "-w", str(dest), str(src)],
                        capture_output=True, text=True, timeout=600)
    wheels = sorted(dest.glob("labreport-*.whl"))
    if cp.returncode != 0 or not wheels:
        tail = (cp.stderr.strip().splitlines() or ["no wheel produced"])[-1]
        raise TransportError(f"could not build the labreport wheel for --bootstrap from {src}: {tail}")
    return wheels[-1]


@dataclass
class Bootstrap:
    wheel: Path
    remote_dir: str = DEFAULT_DIR
    version: str = labreport.__version__

    @classmethod
    def prepare(cls, wheel: Optional[str] = None, remote_dir: Optional[str] = None) -> "Bootstrap":
        if wheel:
            p = Path(wheel).expanduser()
            if not p.is_file() or not p.name.endswith((".whl", ".tar.gz")):
                raise TransportError(f"--bootstrap-wheel {wheel}: not a wheel or sdist file")
            path = p
        else:
            path = build_wheel(Path(tempfile.mkdtemp(prefix="labreport-wheel-")))
        return cls(wheel=path, remote_dir=remote_dir or DEFAULT_DIR)

    @property
    def data(self) -> bytes:
        return self.wheel.read_bytes()

    def content_id(self) -> str:
        """A hash of what the wheel holds (names and bytes), not of the zip file: two builds
        of the same source differ only in zip timestamps and must not force a reinstall."""
        h = hashlib.sha256()
        if self.wheel.name.endswith(".whl"):
            with zipfile.ZipFile(self.wheel) as zf:
                for name in sorted(zf.namelist()):
                    h.update(name.encode() + b"\0" + zf.read(name) + b"\0")
        else:
            h.update(self.data)
        return h.hexdigest()

    async def ensure(self, conn: "asyncssh.SSHClientConnection", node: str, phase: Callable[[str], None],
                     failure: type[Exception]) -> str:
        """The remote path of a labreport of this version, installing it when needed."""
        d = shlex.quote(self.remote_dir)
        r = await conn.run(f"mkdir -p {d} && cd {d} && pwd", check=False, encoding="utf-8", errors="replace")
        if r.exit_status != 0:
            raise failure(f"--bootstrap: cannot create {self.remote_dir} on {node}: {str(r.stderr).strip()}")
        base = str(r.stdout).strip().splitlines()[-1]
        venv = f"{base}/venv"
        exe = f"{venv}/bin/labreport"
        data = self.data
        digest = hashlib.sha256(data).hexdigest()  # of the file: checks the copy
        content = self.content_id()  # of what it holds: decides whether to reinstall
        marker = f"{venv}/.labreport-wheel-sha256"
        r = await conn.run(f"cat {shlex.quote(marker)} && {shlex.quote(exe)} --version", check=False,
                           encoding="utf-8", errors="replace")
        out = str(r.stdout or "").split()
        if r.exit_status == 0 and out[:1] == [content] and out[-1:] == [self.version]:
            return exe  # this very wheel is installed already
        phase(f"bootstrapping labreport {self.version}")
        remote_wheel = f"{base}/{self.wheel.name}"
        r = await conn.run(f"cat > {shlex.quote(remote_wheel)}.part && mv {shlex.quote(remote_wheel)}.part "
                           f"{shlex.quote(remote_wheel)}", input=data, encoding=None, check=False)
        if r.exit_status != 0:
            err = r.stderr or b""  # bytes: run with encoding=None
            err_text = err.decode(errors="replace") if isinstance(err, bytes) else err
            raise failure(f"--bootstrap: copying the wheel to {node} failed: {err_text.strip()}")
        script = f"""
set -e
command -v python3 >/dev/null 2>&1 || {{ echo "LABREPORT-BOOTSTRAP: no python3" >&2; exit 21; }}
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || \
  {{ echo "LABREPORT-BOOTSTRAP: python3 is $(python3 -V 2>&1), labreport needs >= 3.10" >&2; exit 22; }}
python3 - {shlex.quote(remote_wheel)} {digest} <<'EOF'
import hashlib, sys
if hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest() != sys.argv[2]:
    sys.exit("LABREPORT-BOOTSTRAP: the copied wheel is corrupt")
EOF
if [ ! -x {shlex.quote(venv)}/bin/python ]; then
  python3 -m venv --system-site-packages {shlex.quote(venv)} || {{ echo "LABREPORT-BOOTSTRAP: no venv module" >&2; exit 23; }}
fi
{shlex.quote(venv)}/bin/python -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
  {shlex.quote(remote_wheel)} >&2 || exit 24
{shlex.quote(venv)}/bin/python -m pip install -q --disable-pip-version-check {shlex.quote(remote_wheel)} >&2 || exit 24
{shlex.quote(exe)} --version
echo {content} > {shlex.quote(marker)}
"""
        r = await conn.run(script, check=False, encoding="utf-8", errors="replace")
        if r.exit_status != 0:
            err = str(r.stderr or "").strip()
            tail = err.splitlines()[-1] if err else f"exit status {r.exit_status}"
            hints = {
                21: "install Python 3.10+ on the node",
                22: "install Python 3.10+ on the node",
                23: "install the venv module (Debian/Ubuntu: apt install python3-venv)",
                24: "pip could not install labreport's dependencies (an offline node needs them installed first, "
                    "e.g. from a wheelhouse: pip download labreport -d wh; pip install --no-index -f wh labreport)",
            }
            raise failure(f"--bootstrap on {node} failed: {tail}", hints.get(r.exit_status or 0))
        return exe
