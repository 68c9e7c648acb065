"""labreport: inspect a Kubernetes cluster node by node and write the lab report."""

__version__ = "0.1.0"
