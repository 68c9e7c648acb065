"""CNI configuration of a lab node (bridge cni0 + host-local + portmap), and running the
bridge plugin by hand the way dockershim did for Docker pods."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.lab.netns import nsenter_net
from tests.lab.proc import run

CNI_BIN = "/usr/lib/cni"
CNI_VERSION = "0.4.0"
BRIDGE = "cni0"


def bridge_plugin_conf(subnet: str, data_dir: Path, *, name: str = "cbr0") -> dict:
    return {
        "type": "bridge",
        "bridge": BRIDGE,
        "isGateway": True,
        "ipMasq": True,
        "hairpinMode": True,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": subnet}]],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": str(data_dir),
        },
    }


def write_conflist(conf_dir: Path, subnet: str, data_dir: Path, *, name: str = "cbr0") -> Path:
    """/etc/cni/net.d-style conflist for containerd's CRI plugin (its own conf_dir)."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    conflist = {
        "cniVersion": CNI_VERSION,
        "name": name,
        "plugins": [
            bridge_plugin_conf(subnet, data_dir, name=name),
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    path = conf_dir / "10-bridge.conflist"
    path.write_text(json.dumps(conflist, indent=2))
    return path


def bridge_add(node_ns: str, container_id: str, netns_path: str, conf: dict, *, ifname: str = "eth0",
               command: str = "ADD") -> dict:
    """Run the bridge plugin from the node namespace against a pod's netns (``ADD``/``DEL``);
    returns the CNI result JSON for ADD."""
    single = {"cniVersion": CNI_VERSION, "name": "cbr0", **conf}
    env = {**os.environ, "CNI_COMMAND": command, "CNI_CONTAINERID": container_id,
           "CNI_NETNS": netns_path, "CNI_IFNAME": ifname, "CNI_PATH": CNI_BIN}
    cp = run([*nsenter_net(node_ns), f"{CNI_BIN}/bridge"], input=json.dumps(single), env=env,
             check=(command == "ADD"))
    if command == "ADD":
        return json.loads(cp.stdout)
    return {}
