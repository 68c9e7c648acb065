"""The node's conntrack table: the connections the kernel really tracked and their NAT, so
the report can show observed connections beside the paths ``labreport trace`` predicts.

Reads ``conntrack -L -o extended`` (conntrack-tools) or, without the binary,
``/proc/net/nf_conntrack`` (the same lines); parsed by :mod:`labreport.parsers.conntrack`.
Both show the table of the network namespace the collector runs in. A kernel without
connection tracking is not a failure: nothing is tracked, the collector is not applicable.
The table is bounded (``parsers.conntrack.MAX_ENTRIES`` entries; the rest counted).
"""

from __future__ import annotations

from collectors.base import CollectContext, Collector, CollectorOutput, CommandSpec, Need, Plan, failed
from labreport.errors import ParseError
from labreport.parsers import conntrack as conntrack_parser
from labreport.snapshot import Conntrack, Evidence

EVIDENCE_ID = "conntrack-L"
PROC_FILE = "/proc/net/nf_conntrack"
MAX_EVIDENCE_LINES = conntrack_parser.MAX_ENTRIES


def _bounded(text: str) -> str:
    lines = text.splitlines()
    if len(lines) <= MAX_EVIDENCE_LINES:
        return text
    return "\n".join(lines[:MAX_EVIDENCE_LINES]) + f"\n# … {len(lines) - MAX_EVIDENCE_LINES} more lines not kept\n"


class ConntrackCollector(Collector):
    name = "conntrack"
    description = "tracked connections and their NAT via conntrack -L -o extended (or /proc/net/nf_conntrack)"
    needs = (
        Need.root("the conntrack table is readable only as root"),
        Need.kernel("connection tracking", PROC_FILE, "/sys/module/nf_conntrack",
                    "/proc/sys/net/netfilter/nf_conntrack_max",
                    why="NAT (kube-proxy's DNAT and masquerade) needs it; without it nothing is tracked",
                    fix="modprobe nf_conntrack"),
        Need.binary("conntrack", required=False, fix="apt-get install conntrack",
                    why="without it /proc/net/nf_conntrack is read instead"),
    )
    commands = (CommandSpec(EVIDENCE_ID, ("conntrack", "-L", "-o", "extended")),)

    def not_applicable(self, p: Plan, ctx: CollectContext) -> bool:
        """No connection tracking in the kernel: no NAT either, so nothing to show."""
        return any(c.need.kind == "kernel" for c in p.blocking)

    def collect(self, ctx: CollectContext) -> CollectorOutput:
        out = CollectorOutput(self.name)
        text: str | None = None
        command = "conntrack -L -o extended"
        if ctx.which("conntrack"):
            res = ctx.run(["conntrack", "-L", "-o", "extended"])
            ev = res.to_evidence(EVIDENCE_ID)
            ev.stdout = _bounded(ev.stdout)
            out.evidence.append(ev)
            if res.ok:
                text = res.stdout
            else:
                out.partial(f"conntrack -L failed: {res.failure()}; read {PROC_FILE} instead")
        if text is None:
            command = f"cat {PROC_FILE}"
            try:
                with open(PROC_FILE, encoding="utf-8", errors="replace") as fh:
                    text = "".join(line for _, line in zip(range(MAX_EVIDENCE_LINES * 4), fh))
            except OSError as exc:
                return failed(self.name, f"cannot read {PROC_FILE}: {exc.strerror or exc}",
                              fix="apt-get install conntrack; run as root")
            out.evidence.append(Evidence(id=EVIDENCE_ID, command=command, stdout=_bounded(text), exit_code=0))
        if not text.strip():
            out.conntrack = Conntrack(entries=[], total=0, evidence_id=EVIDENCE_ID)
            return out
        try:
            parsed = conntrack_parser.parse_table(text, source=EVIDENCE_ID)
        except ParseError as exc:
            out.partial(f"{command} output not readable: {exc}")
            return out
        parsed.value.evidence_id = EVIDENCE_ID
        out.conntrack = parsed.value
        out.warnings.extend(parsed.warnings[:50])
        return out
