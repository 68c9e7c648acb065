"""Record the policy-routing lab's outputs for tests/test_trace_policy_import.py (root):
``python3 -m tests.support.capture_policy [DIR]`` builds the lab of
tests/test_trace_policy_kernel.py, writes what `ip addr`, `ip route show table all`,
`ip rule`, `ip -6 rule`, `ip -j rule` and `iptables-save` print in its node namespace, and the kernel's
`ip -j route get …` answer for each of that module's forwarded flows (kernel-answers.json),
then removes the lab."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.test_trace_policy_kernel import FORWARDED, Lab, kernel, sh


def main(out: Path) -> None:
    lab = Lab()
    try:
        lab.build()
        r = lab.ns["r"]
        out.mkdir(parents=True, exist_ok=True)
        for name, argv in (("ip-addr.out", ["ip", "-n", r, "addr"]),
                           ("ip-route-table-all.out", ["ip", "-n", r, "route", "show", "table", "all"]),
                           ("ip-rule.out", ["ip", "-n", r, "rule"]),
                           ("ip-6-rule.out", ["ip", "-n", r, "-6", "rule"]),
                           ("ip-j-rule.out", ["ip", "-n", r, "-j", "rule"]),
                           ("iptables-save.out", ["ip", "netns", "exec", r, "iptables-save"])):
            (out / name).write_text(sh(*argv).stdout.replace(r, "node"))
        answers = {c.id: {"ip route get": " ".join(c.get), "answer": kernel(lab, *c.get)} for c in FORWARDED}
        (out / "kernel-answers.json").write_text(json.dumps(answers, indent=1) + "\n")
    finally:
        lab.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "fixtures" / "trace-policy")
