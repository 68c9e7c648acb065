"""nftables ruleset: ``nft list ruleset``, listed once — kept as the evidence a person
reads and parsed into the snapshot's typed tables.

The listing goes through :mod:`labreport.parsers.nft`, the parser ``labreport import --nft``
uses, so a live node and a pasted listing give the same records. One listing, not two:
for a 10,000-service kube-proxy table each listing is a long netlink dump (12.6 s for the
text, 15.6 s for ``nft -j``), and the text holds everything the records need.
"""

from __future__ import annotations

from collectors.base import CollectContext, Collector, CollectorOutput, CommandSpec, Need
from labreport.errors import ParseError
from labreport.parsers import nft as nft_parser
from labreport.snapshot import NftRuleset

TEXT_ID = "nft-list-ruleset"
LIST_RULESET = CommandSpec(TEXT_ID, ("nft", "list", "ruleset"))


class NftablesCollector(Collector):
    name = "nftables"
    description = "nftables ruleset (kube-proxy's nftables mode, iptables-nft tables, firewalls) via nft"
    needs = (
        Need.root("nft lists the kernel's ruleset only as root"),
        Need.binary("nft", fix="apt-get install nftables"),
    )
    commands = (LIST_RULESET,)

    def collect(self, ctx: CollectContext) -> CollectorOutput:
        out = CollectorOutput(self.name)
        # a 10,000-service kube-proxy table takes ~13 s to list: allow more than one command's default
        timeout = max(ctx.command_timeout, 60.0)
        res = ctx.run(list(LIST_RULESET.argv), timeout=timeout)
        out.evidence.append(res.to_evidence(TEXT_ID))
        if not res.ok:
            out.partial(res.failure(), fix="run as root with nftables installed")
            return out
        if not res.stdout.strip():
            ruleset = NftRuleset(tables=[])  # an empty ruleset is an answer, not a failure
        else:
            try:
                parsed = nft_parser.parse(res.stdout, source=TEXT_ID)
            except ParseError as exc:
                out.partial(f"nft list ruleset not readable: {exc}")
                return out
            ruleset = parsed.value
            out.warnings.extend(parsed.warnings)
        ruleset.evidence_id = TEXT_ID
        out.nftables = ruleset
        return out
