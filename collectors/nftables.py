"""nftables ruleset: ``nft -j list ruleset`` parsed (structured), ``nft list ruleset`` kept
as the evidence a person reads.

Both go through :mod:`labreport.parsers.nft`, the parser ``labreport import --nft`` uses,
so a live node and a pasted listing give the same records. With an nft too old for
``-j`` (before 0.9), the text is parsed instead.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from collectors.base import CollectContext, Collector, CollectorOutput, CommandSpec, Need
from labreport.errors import ParseError
from labreport.parsers import nft as nft_parser
from labreport.snapshot import NftRuleset

TEXT_ID = "nft-list-ruleset"
JSON_ID = "nft-list-ruleset-json"


class NftablesCollector(Collector):
    name = "nftables"
    description = "nftables ruleset (kube-proxy's nftables mode, iptables-nft tables, firewalls) via nft"
    needs = (
        Need.root("nft lists the kernel's ruleset only as root"),
        Need.binary("nft", fix="apt-get install nftables"),
    )
    commands = (
        CommandSpec(JSON_ID, ("nft", "-j", "list", "ruleset")),
        CommandSpec(TEXT_ID, ("nft", "list", "ruleset")),
    )

    def collect(self, ctx: CollectContext) -> CollectorOutput:
        out = CollectorOutput(self.name)
        # a 10,000-service kube-proxy table takes ~10 s to list: allow more than one command's default
        timeout = max(ctx.command_timeout, 60.0)
        # both listings at once: each is a long netlink dump for a big ruleset (10,000
        # services: 12.6 s and 15.6 s one after the other on a 2-core machine)
        with ThreadPoolExecutor(max_workers=2) as pool:
            text_f = pool.submit(ctx.run, ["nft", "list", "ruleset"], timeout=timeout)
            json_f = pool.submit(ctx.run, ["nft", "-j", "list", "ruleset"], timeout=timeout)
            text_res, json_res = text_f.result(), json_f.result()
        out.evidence.append(text_res.to_evidence(TEXT_ID))

        ruleset = None
        if json_res.ok and json_res.stdout.strip():
            try:
                res = nft_parser.parse(json_res.stdout, source=JSON_ID)
                ruleset = res.value
                out.warnings.extend(res.warnings)
            except ParseError as exc:
                out.partial(f"nft -j output not readable ({exc}); parsed the text listing instead")
        elif not json_res.ok:
            out.partial(f"{json_res.failure()}; parsed the text listing instead")

        if ruleset is None:
            if not text_res.ok:
                out.partial(text_res.failure(), fix="run as root with nftables installed")
                return out
            if not text_res.stdout.strip():
                ruleset = NftRuleset(tables=[])  # an empty ruleset is an answer, not a failure
            else:
                try:
                    res = nft_parser.parse(text_res.stdout, source=TEXT_ID)
                    ruleset = res.value
                    out.warnings.extend(res.warnings)
                except ParseError as exc:
                    out.partial(f"nft list ruleset not readable: {exc}")
                    return out
        ruleset.evidence_id = TEXT_ID
        out.nftables = ruleset
        return out
