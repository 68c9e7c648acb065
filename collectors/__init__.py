"""Node-side gatherers: one module per source, each declaring what it needs (root, a
socket, a binary, a kernel feature) and never aborting the run. See collectors/base.py."""
