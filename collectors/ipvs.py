"""IPVS virtual servers (kube-proxy's ipvs mode) through ``ipvsadm -Ln``, parsed by
:mod:`labreport.parsers.ipvsadm` (the parser ``labreport import --ipvsadm`` uses).

A kernel without IPVS is a normal node in another mode: the collector then says so
("not collected: needs kernel feature IPVS …") instead of failing the run. The
``kube-ipvs0`` link and its addresses come from the netlink collector.
"""

from __future__ import annotations

from collectors.base import CollectContext, Collector, CollectorOutput, CommandSpec, Need, Plan, failed
from labreport.errors import ParseError
from labreport.parsers import ipvsadm as ipvsadm_parser

EVIDENCE_ID = "ipvsadm-Ln"


class IpvsCollector(Collector):
    name = "ipvs"
    description = "IPVS virtual and real servers (kube-proxy ipvs mode) via ipvsadm -Ln"
    needs = (
        Need.root("ipvsadm reads the kernel's IPVS table only as root"),
        Need.kernel("IPVS", "/proc/net/ip_vs", "/sys/module/ip_vs",
                    why="kube-proxy's ipvs mode needs it; without it the node runs another mode",
                    fix="modprobe ip_vs (only if kube-proxy should run in ipvs mode)"),
        Need.binary("ipvsadm", fix="apt-get install ipvsadm"),
    )
    commands = (CommandSpec(EVIDENCE_ID, ("ipvsadm", "-Ln")),)

    def not_applicable(self, p: Plan, ctx: CollectContext) -> bool:
        """No IPVS in the kernel: kube-proxy is not in ipvs mode here, with or without the
        ipvsadm binary, which is not a failed collection. Decided from the kernel need
        alone (a missing binary or root beside it changes nothing)."""
        return any(c.need.kind == "kernel" for c in p.blocking)

    def collect(self, ctx: CollectContext) -> CollectorOutput:
        res = ctx.run_spec(self.command(EVIDENCE_ID))
        if not res.ok:
            out = failed(self.name, res.failure(), fix="modprobe ip_vs; apt-get install ipvsadm")
            out.evidence.append(res.to_evidence(EVIDENCE_ID))
            return out
        out = CollectorOutput(self.name)
        out.evidence.append(res.to_evidence(EVIDENCE_ID))
        try:
            parsed = ipvsadm_parser.parse(res.stdout, source=EVIDENCE_ID)
        except ParseError as exc:
            out.partial(f"ipvsadm -Ln output not readable: {exc}")
            return out
        parsed.value.evidence_id = EVIDENCE_ID
        out.ipvs = parsed.value
        out.warnings.extend(parsed.warnings)
        return out
