"""What kubeadm's preflight and the lab's Q1 look at: kernel modules and sysctls,
cgroup version and drivers (kubelet's vs the runtime's), component versions, OS, kernel,
hostname, kube-proxy's configured mode, the CNI config.

Sources are files (/proc/sys, /proc/modules, /sys/module, os-release, kubelet's and
kube-proxy's config, containerd's config) and `--version` commands, all optional: what is
absent is simply not recorded (a node without kubelet is still a node). Docker's cgroup
driver and version come from the docker collector (SDK), the CRI runtime's version from
the cri collector.
"""

from __future__ import annotations

import os
import platform
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

from collectors.base import CollectContext, Collector, CollectorOutput, CommandSpec, Need, synthesized
from labreport.snapshot import Evidence

SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.ipv6.conf.all.forwarding",
    "net.ipv4.conf.all.rp_filter",
    "vm.swappiness",
)
MODULES = ("br_netfilter", "overlay", "bridge", "veth", "vxlan", "ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh",
           "nf_conntrack", "ip_tables", "iptable_nat", "nf_tables", "nf_nat", "xt_MASQUERADE", "ipip")

# name -> (argv, regex picking the version out of the output)
VERSION_COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "kubelet": (("kubelet", "--version"), r"v?(\d+\.\d+\.\d+\S*)"),
    "kubeadm": (("kubeadm", "version", "-o", "short"), r"v?(\d+\.\d+\.\d+\S*)"),
    "containerd": (("containerd", "--version"), r"\s(v?\d+\.\d+\.\d+\S*)"),
    "runc": (("runc", "--version"), r"runc version (\S+)"),
    "crio": (("crio", "--version"), r"[Vv]ersion:?\s+(\S+)"),
    "cri-dockerd": (("cri-dockerd", "--version"), r"(\d+\.\d+\.\d+\S*)"),
    "iptables": (("iptables", "--version"), r"v(\d+\.\d+\.\d+)"),
    "nft": (("nft", "--version"), r"v(\d+\.\d+\.\d+)"),
    "ip": (("ip", "-V"), r"iproute2-([^\s,]+)"),
}

KUBELET_CONFIG = "/var/lib/kubelet/config.yaml"
KUBE_PROXY_CONFIG = "/var/lib/kube-proxy/config.conf"
CONTAINERD_CONFIG = "/etc/containerd/config.toml"
CNI_DIR = "/etc/cni/net.d"


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def read_sysctls(proc_root: str = "/proc") -> dict[str, str]:
    out = {}
    for key in SYSCTLS:
        val = _read(f"{proc_root}/sys/" + key.replace(".", "/"))
        if val is not None:
            out[key] = val.strip()
    return out


def loaded_modules(proc_root: str = "/proc", sys_module: str = "/sys/module") -> list[str]:
    """Modules of interest that are loaded, or built into the kernel."""
    text = _read(f"{proc_root}/modules") or ""
    loaded = {line.split(" ", 1)[0] for line in text.splitlines() if line}
    builtin = set()
    release = platform.release()
    btext = _read(f"/lib/modules/{release}/modules.builtin") or ""
    for line in btext.splitlines():
        builtin.add(os.path.basename(line).rsplit(".ko", 1)[0].replace("-", "_"))
    out = []
    for m in MODULES:
        if m in loaded or m in builtin or os.path.isdir(os.path.join(sys_module, m)):
            out.append(m)
    return out


def os_release() -> Optional[str]:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        text = _read(path)
        if text:
            m = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text, re.M)
            if m:
                return m.group(1)
    return None


def yaml_field(text: str, key: str) -> Optional[str]:
    """A top-level scalar from a kubelet/kube-proxy YAML config (no full YAML needed, and
    it tolerates files PyYAML would reject)."""
    m = re.search(rf"^{re.escape(key)}:\s*\"?([^\"#\n]*)\"?", text, re.M)
    if m:
        val = m.group(1).strip()
        return val or None
    return None


def containerd_cgroup_driver(text: str) -> Optional[str]:
    """containerd's runc driver: ``SystemdCgroup = true`` → systemd, else cgroupfs."""
    m = re.search(r"^\s*SystemdCgroup\s*=\s*(true|false)", text, re.M)
    if m:
        return "systemd" if m.group(1) == "true" else "cgroupfs"
    return None


def cni_config_file(cni_dir: str = CNI_DIR) -> Optional[str]:
    """The config file a runtime picks: the first by name (.conflist, .conf, .json)."""
    try:
        names = sorted(n for n in os.listdir(cni_dir) if n.endswith((".conflist", ".conf", ".json")))
    except OSError:
        return None
    return os.path.join(cni_dir, names[0]) if names else None


class SysinfoCollector(Collector):
    name = "sysinfo"
    description = ("kernel modules and sysctls kubeadm checks, cgroup version and drivers, versions of kubelet, "
                   "containerd, runc …, OS, kernel, kube-proxy mode, CNI config")
    needs = (Need.path("/proc/sys", why="reads sysctls"),)
    commands = tuple(CommandSpec(f"version:{name}", argv, optional=True) for name, (argv, _) in VERSION_COMMANDS.items())

    def collect(self, ctx: CollectContext) -> CollectorOutput:
        out = CollectorOutput(self.name)
        uname = platform.uname()
        sysctls = read_sysctls(ctx.proc_root)
        modules = loaded_modules(ctx.proc_root)
        if "br_netfilter" not in modules and "net.bridge.bridge-nf-call-iptables" in sysctls:
            modules.insert(0, "br_netfilter")  # its sysctls exist only when it is in the kernel
        cgroup_version = 2 if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else 1
        info: dict[str, Any] = {
            "hostname": socket.gethostname(),
            "kernel": uname.release,
            "arch": uname.machine,
            "os": os_release(),
            "sysctls": sysctls,
            "modules": modules,
            "cgroup_version": cgroup_version,
        }
        out.evidence.append(synthesized(
            "sysctl", "sysctl " + " ".join(SYSCTLS),
            "".join(f"{k} = {sysctls[k]}\n" if k in sysctls else
                    f"sysctl: cannot stat /proc/sys/{k.replace('.', '/')}: No such file or directory\n"
                    for k in SYSCTLS)))
        mod_text = _read(f"{ctx.proc_root}/modules")
        if mod_text is None:  # a kernel without loadable modules: built-ins show in /sys/module
            present = [m for m in MODULES if os.path.isdir(f"/sys/module/{m}")]
            out.evidence.append(Evidence(id="modules", command="ls -d " + " ".join(f"/sys/module/{m}" for m in MODULES),
                                         stdout="".join(f"/sys/module/{m}\n" for m in present), origin="live"))
        else:
            wanted = [ln for ln in mod_text.splitlines() if ln.split(" ", 1)[0] in MODULES]
            out.evidence.append(Evidence(id="modules", command="grep -E '^(" + "|".join(MODULES) + ") ' /proc/modules",
                                         stdout="\n".join(wanted) + ("\n" if wanted else ""), origin="live"))
        meminfo = _read(f"{ctx.proc_root}/meminfo")
        if meminfo is not None:
            swap = next((ln.split()[1] for ln in meminfo.splitlines()
                         if ln.startswith("SwapTotal:") and len(ln.split()) >= 2), None)
            if swap is not None and swap.isdigit():
                info["swap_total_kb"] = int(swap)  # kubeadm's preflight refuses swap by default
                out.evidence.append(Evidence(id="swap", command="grep SwapTotal /proc/meminfo",
                                             stdout=f"SwapTotal:      {swap} kB\n", origin="live"))
        drivers: dict[str, str] = {}
        kubelet_cfg = _read(KUBELET_CONFIG)
        if kubelet_cfg is not None:
            # kubelet's default since v1.22 (kubeadm writes it explicitly) is systemd
            drv = yaml_field(kubelet_cfg, "cgroupDriver")
            if drv:
                drivers["kubelet"] = drv
            out.evidence.append(Evidence(id="kubelet-config", command=f"cat {KUBELET_CONFIG}",
                                         stdout=kubelet_cfg, origin="live"))
        ctd_cfg = _read(CONTAINERD_CONFIG)
        if ctd_cfg is not None:
            drv = containerd_cgroup_driver(ctd_cfg)
            drivers["containerd"] = drv or "cgroupfs"
            lines = [f"{i}:{ln}" for i, ln in enumerate(ctd_cfg.splitlines(), 1) if "SystemdCgroup" in ln]
            out.evidence.append(Evidence(id="containerd-config", command=f"grep -n SystemdCgroup {CONTAINERD_CONFIG}",
                                         stdout="\n".join(lines) + ("\n" if lines else ""),
                                         exit_code=0 if lines else 1, origin="live"))
        if drivers:
            info["cgroup_drivers"] = drivers
        kp = _read(KUBE_PROXY_CONFIG)
        if kp is not None:
            info["kube_proxy_mode"] = yaml_field(kp, "mode") or "iptables"  # empty mode = the default
            out.evidence.append(Evidence(id="kube-proxy-config", command=f"cat {KUBE_PROXY_CONFIG}", stdout=kp,
                                         origin="live"))
        cni = cni_config_file()
        if cni:
            info["cni_config"] = cni
            text = _read(cni)
            if text is not None:
                out.evidence.append(Evidence(id="cni-config", command=f"cat {cni}", stdout=text, origin="live"))
        info["versions"] = self._versions(ctx, out)
        out.info = info
        return out

    def _versions(self, ctx: CollectContext, out: CollectorOutput) -> dict[str, str]:
        present = [(name, argv, rx) for name, (argv, rx) in VERSION_COMMANDS.items() if ctx.which(argv[0])]
        versions: dict[str, str] = {}
        if not present:
            return versions
        with ThreadPoolExecutor(max_workers=min(8, len(present))) as pool:
            results = list(pool.map(lambda item: ctx.run_spec(self.command(f"version:{item[0]}"), timeout=5.0),
                                    present))
        for (name, _argv, rx), res in zip(present, results):
            out.evidence.append(res.to_evidence(f"version:{name}"))
            text = res.stdout + "\n" + res.stderr
            m = re.search(rx, text)
            if res.exit_code == 0 and m:
                versions[name] = m.group(1)
            elif not res.ok:
                out.partial(f"{name} version unknown: {res.failure()}")
        return versions
