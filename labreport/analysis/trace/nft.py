"""nftables base chains as netfilter hook entries (interpreter: see nft_eval)."""

from __future__ import annotations

from typing import Any, Callable

from labreport.analysis.trace.netfilter import HookEntry
from labreport.snapshot import NftRuleset


def entries_for(ruleset: NftRuleset, node: Any) -> Callable[..., list[HookEntry]]:
    def entries(hook: str, family: str, skip_iptables_tables: bool = False) -> list[HookEntry]:
        return []
    return entries
