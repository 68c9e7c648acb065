"""Reaching nodes: ``multi.collect_nodes`` (several nodes at once), ``ssh`` (one node over
asyncssh), ``sshconfig`` (what a node name resolves to), ``bootstrap`` (installing
labreport on a node over the same session)."""
