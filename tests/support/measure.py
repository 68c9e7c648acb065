"""Run labreport's CLI in this process and record its exit status and peak memory.

``python3 -m tests.support.measure RESULT.json -- ARGS…``: RESULT.json gets
``{"rc": …, "maxrss_kb": …}`` (ru_maxrss of this process: labreport's own memory, not the
Chromium or dot it starts)."""

from __future__ import annotations

import json
import resource
import sys


def run() -> int:
    out = sys.argv[1]
    args = sys.argv[3:] if sys.argv[2:3] == ["--"] else sys.argv[2:]
    from labreport.cli import main

    rc = main(args)
    with open(out, "w", encoding="utf-8") as fh:
        json.dump({"rc": rc, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}, fh)
    return rc


if __name__ == "__main__":
    sys.exit(run())
