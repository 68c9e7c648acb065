"""``labreport trace``: a model of each node's datapath that simulates packets through it.

- :mod:`.world`: the model built from a snapshot (addresses, routes, devices, veth pairs,
  neighbours/FDB, rule sets, who owns which address);
- :mod:`.netfilter`: the hooks in kernel order; :mod:`.iptables` and :mod:`.nft`: the rule
  interpreters; :mod:`.engine`: the simulator; :mod:`.resolve`: SRC/DST words → a flow;
- :mod:`.model`: what a trace returns (outcomes with probabilities and hops; with replies,
  each delivered outcome's way back through conntrack, :class:`~.model.Reply`).

Pure: snapshot (and its analysis) in, outcomes out.
"""

from labreport.analysis.trace.engine import run_flow
from labreport.analysis.trace.model import CtEntry, Flow, Outcome, Reply, TraceHop, TraceResult
from labreport.analysis.trace.world import World, build_world

__all__ = ["CtEntry", "Flow", "Outcome", "Reply", "TraceHop", "TraceResult", "World", "build_world", "run_flow"]
