"""Run labreport's CLI in a child process and record its exit status and peak memory.

``python3 -m tests.support.measure RESULT.json -- ARGS…``: RESULT.json gets
``{"rc": …, "maxrss_kb": …}``: the child's ru_maxrss (RUSAGE_CHILDREN), labreport's own
memory, not the Chromium or dot it starts. A child, because Linux carries a process's RSS
high-water mark across execve: this process, forked from a big pytest, reports pytest's
size; its own child, forked from this small one, does not."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

CHILD = "import sys; from labreport.cli import main; sys.exit(main(sys.argv[1:]))"


def run() -> int:
    out = sys.argv[1]
    args = sys.argv[3:] if sys.argv[2:3] == ["--"] else sys.argv[2:]
    rc = subprocess.run([sys.executable, "-c", CHILD, *args]).returncode
    with open(out, "w", encoding="utf-8") as fh:
        json.dump({"rc": rc, "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}, fh)
    return rc


if __name__ == "__main__":
    sys.exit(run())
