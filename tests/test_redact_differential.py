"""Secrets planted where a user's data can carry them, in real outputs, and the redaction
checked end to end: the fast paths (``json_is_clean``, ``_nft_is_clean``, ``_ipt_is_clean``,
node-by-node ``redact_snapshot``) against the walk, and the outputs (the stored snapshot,
``analyze --json``, ``render``, ``trace``, ``diff``) against the planted values.

The oracle is the catalogue itself (tests/support/secrets_catalogue.py): a form that
``redact_text`` redacts when it stands alone must be redacted wherever it stands — a rule's
comment, a set element's comment, a pod's label, a container's env or args, a process's
command line. Variants of each form (JSON-escaped, upper-cased, quoted) are planted too; a
variant the catalogue does not redact alone is only checked for the fast paths agreeing
with the walk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from labreport.importer import import_files
from labreport.redact import _walk_snapshot, for_storage, redact_snapshot

KEY_DATA = "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ=="
KC_TOKEN = "kc-token-8f2e1d9c"


def _in_netns(script: str) -> str:
    """``script`` run by sh in a network namespace of this test's own (deleted after)."""
    ns = f"lrredact{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
    try:
        return subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", script], check=True,
                              capture_output=True, text=True, timeout=60).stdout
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


needs_lab = pytest.mark.skipif(os.geteuid() != 0 or not all(shutil.which(t) for t in ("ip", "nft", "iptables-save")),
                               reason="needs root, ip, nft and iptables")


@needs_lab
def test_kubeconfig_lines_in_real_nft_and_iptables_comments_are_redacted():
    """The known leak: ``client-key-data: …`` (a kubeconfig line) as a rule comment, listed
    by the real nft and iptables-save of a namespace of the test's own."""
    out = _in_netns(f'''
nft add table inet lab
nft add chain inet lab input '{{ type filter hook input priority 0; policy accept; }}'
nft add rule inet lab input tcp dport 6443 accept comment '"client-key-data: {KEY_DATA}"'
nft add rule inet lab input tcp dport 8080 accept comment '"token: {KC_TOKEN}"'
nft list ruleset
echo ==SPLIT==
iptables -A INPUT -p tcp --dport 6443 -m comment --comment "client-key-data: {KEY_DATA}" -j ACCEPT
iptables -A INPUT -p tcp --dport 8080 -m comment --comment "token: {KC_TOKEN}" -j ACCEPT
iptables-save
''')
    nft, ipt = out.split("==SPLIT==\n")
    assert f'comment "client-key-data: {KEY_DATA}"' in nft and f'--comment "token: {KC_TOKEN}"' in ipt
    snap = import_files([("n", {"nft": [("r.nft", nft)], "iptables-save": [("i.txt", ipt)]})], kubectl=[])
    assert KEY_DATA in snap.model_dump_json()  # the control: the secret is in the parsed snapshot
    for redacted in (for_storage(snap), _walk_snapshot(snap)[0], redact_snapshot(snap)[0]):
        text = redacted.model_dump_json()
        assert KEY_DATA not in text and KC_TOKEN not in text
        assert "client-key-data: <redacted:" in text and "token: <redacted:" in text
