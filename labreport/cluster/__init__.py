"""The Kubernetes API side: ``api.collect_cluster`` (objects as the API returned them),
``manifests.applied_manifest`` (what was applied), ``redact.scrub`` (no tokens stored)."""
