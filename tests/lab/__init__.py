"""The real node lab: test helpers (not tests) that build Kubernetes-style nodes on this
machine from real parts — containerd with its CRI plugin, dockerd, runc, CNI plugins,
iptables, sshd — each node inside a network namespace of the test's own, so nothing touches
the root namespace and concurrent test runs never collide (unique names everywhere).

Single node (``tests.lab.node``)::

    from tests.lab.node import NodeLab
    lab = NodeLab()                 # name "lrl"+6 hex; pod_cidr 10.244.1.0/24; uplink eth0
    truth = lab.build()             # ~1 s; NodeTruth (tests.lab.truth)
    try:
        lab.exec("curl", "-s", "http://10.96.0.80/")   # ip netns exec NODE …
    finally:
        lab.close()                 # idempotent; returns teardown errors (list[str])

  What ``build()`` makes, inside namespace ``truth.node_ns``:
  - images built locally (tests.lab.images): ``registry.k8s.io/pause:3.6`` (a static C
    pause, gcc -static) and ``localhost/labreport/busybox-httpd:1.0`` (static busybox,
    entrypoint ``httpd -f -p 80 -h /www``), imported with ``ctr images import`` / ``docker load``;
  - containerd + CRI on ``truth.containerd_socket`` (own root/state/config, restrict_oom_score_adj,
    CNI conflist: bridge cni0, isGateway, ipMasq, host-local ``pod_cidr``, portmap);
  - dockerd on ``truth.docker_host`` (unix://…, --bridge=none --iptables=false);
  - pods (``truth.pods``, TruthPod): ``default/fileserver`` (CRI; containers ``fileserver`` =
    httpd and ``downloader`` writing /www/index.html into the volume both mount),
    ``default/web`` (CRI; one container ``web``), ``default/dweb`` (Docker, dockershim names
    ``k8s_POD_dweb_default_<uid>_0`` + ``k8s_httpd_dweb_default_<uid>_0``, network
    ``none``/``container:…``, wired to cni0 by the CNI bridge plugin run against
    /proc/<pause pid>/ns/net). Each TruthPod has sandbox_id, sandbox_pid, ip, netns_path,
    netns_name (cni-… or None for docker), netns_inode, containers (TruthContainer: name, id,
    image, runtime, docker_name), veth (TruthVeth: host_ifname/ifindex/mac, pod_ifname/ifindex/mac,
    bridge), content (what its httpd serves);
  - kube-proxy iptables rules (tests.lab.kubeproxy) in the node's nat table:
    ``default/web:http`` 10.96.0.80:80 (NodePort 30080) over the three pods (probabilities
    1/3, 1/2, last) and ``default/fileserver:http`` 10.96.0.81:8080 → fileserver:80;
    ``truth.services`` (TruthService with endpoints: address, pod, chain, rule_probability, share);
  - an uplink ``eth0`` 192.168.56.10/24 with its default route via 192.168.56.1 in a gateway
    namespace ``<node>g`` (``truth.uplink_veth``, ``truth.uplink_peer_ns``).
  Options: ``NodeLab(pod_cidr=…, cluster_cidr=…, with_docker=False, uplink=None,
  services=False, pod_prefix="x-")``; ``lab.load_services([ServicePortSpec…])`` loads others;
  ``lab.reach_all_endpoints("default/web:http")`` curls the cluster IP until every endpoint's
  pod answered; ``lab.cri`` (CriClient), ``lab.dockerd.client`` (docker SDK), ``lab.build_seconds``.
  ``tests.lab.checks.check_pods/check_veths/check_services(node_analysis_dict, truth)`` compare
  ``labreport analyze --json`` output with a NodeTruth exactly; ``truth_from_dict`` reloads a
  truth.json.

Plain ``ip`` node (``tests.lab.plain``): ``PlainIpNode(n_pods=4).build()`` → PlainTruth: a
bridge ``br-pods`` in namespace ``lri…`` and N pod namespaces ``<node>-pod<i>`` joined by veth
pairs (no runtime at all); ``ping_all()``; ``close()``.

Two nodes (``tests.lab.cluster``)::

    from tests.lab.cluster import TwoNodeCluster
    c = TwoNodeCluster(overlay="vxlan")     # or "host-gw"; with_sshd=True
    truth = c.build()                       # ClusterTruth, ~1.5 s
    truth.nodes["master"], truth.nodes["worker"]      # NodeTruth each (as above)
    c.exec("master", "ssh", "-F", str(truth.ssh_config), "worker", "labreport", "collect",
           "--local", "--out", "-", "--cri-socket", truth.nodes["worker"].containerd_socket, …)
    c.close()

  master: namespace ``lrm<tag>``, pods 10.244.0.0/24 (``master-fileserver``, ``master-web``,
  CRI only); worker: ``lrw<tag>``, pods 10.244.1.0/24 (``worker-fileserver``, ``worker-web``,
  ``worker-dweb`` on Docker). Uplinks: each node's ``eth0`` (192.168.56.10/24, .11/24) is a
  veth into namespace ``lrn<tag>`` holding bridge br0 and the gateway 192.168.56.1 (a default
  route is needed: connect() routes a cluster IP before OUTPUT's DNAT). Overlay ``vxlan``:
  ``flannel.1`` (VNI 1, dstport 8472, nolearning, local = uplink IP, address 10.244.X.0/32),
  route ``10.244.Y.0/24 via 10.244.Y.0 dev flannel.1 onlink``, permanent neighbour and FDB
  entry for the peer's flannel.1 MAC (``truth.vxlan_macs``); ``host-gw``: ``10.244.Y.0/24 via
  <peer uplink IP> dev eth0``. Services on both nodes: ``default/web:http`` over all 5 pods
  (1/5, 1/4, 1/3, 1/2, last), ``default/fileserver:http`` over both fileservers. sshd on each
  uplink (tests.lab.sshd: own host key, pid file, authorized_keys with a generated ed25519
  key, StrictModes no, SetEnv PATH with this interpreter's bin first); ``truth.ssh_config``
  has Host ``master`` and ``worker`` (StrictHostKeyChecking yes, known_hosts filled). Run SSH
  clients *inside* a lab namespace (``c.exec("master", "ssh", …)``), never from the root one.

Service labs for the kernel oracle (``tests.lab.svclab``, no container runtime: pods are
plain namespaces running busybox httpd on 80 and 8080)::

    from tests.lab.svclab import ServiceLab
    lab = ServiceLab(mode="iptables", nodes=1).build()   # or mode="nftables", nodes=2; ~1 s
    lab.flows                       # Flow cases (id, source ns, dst ip:port, expected kind)
    lab.enable_kernel_trace()       # TRACE rules / an nftrace chain at priority -300 (after collecting)
    lab.close()

  One node ``n1``: bridge pods web-0..2 on cni0 (10.244.1.0/24), calico-style routed pods
  routed-0 and client (10.244.65.0/24, /32 routes, proxy ARP), outside clients ``ext``
  (192.168.56.100, inside the LB source range) and ``ext2`` (.150) on the node network;
  Services ClusterIP+NodePort, eTP Local with/without a local endpoint, iTP Local,
  ClientIP affinity, a LoadBalancer IP with loadBalancerSourceRanges, no endpoints, a
  policy-like DROP of our own, a routed-pod endpoint. Two nodes: VXLAN (flannel.1) between
  them, a Service over both nodes' pods and an eTP Local one. kube-proxy's rules for either
  mode come from ``tests.lab.kprules`` (written per node the way kube-proxy writes them).
  ``tests.lab.ktrace``: conntrack observation (``observe``) and the kernel's rule trace
  (``kernel_trace``: xtables-monitor --trace / nft monitor trace, parsed into hops);
  ``tests.lab.oracle_cases``: the comparisons tests/test_trace_kernel_*.py make.

Other pieces: ``tests.lab.cri.CriClient(socket)`` (Version, Run/Stop/RemovePodSandbox,
PodSandboxStatus verbose → (status, info JSON), Create/Start/Stop/RemoveContainer, List…,
ListImages); ``tests.lab.sshd.SshServer(netns, dir, address, ClientKey.generate(dir)).start()``;
``tests.lab.cli.labreport_argv()`` (how to run the installed ``labreport``);
``tests.lab.capture_sample`` (records samples/live-containerd-docker-node/);
``python -m tests.lab.measure`` (build/teardown timings).

Teardown stops/removes pods and containers through CRI/Docker, runs CNI DEL, stops only the
daemons the lab started (by pid; leftover shims are found by the lab's unique socket path),
deletes the lab's namespaces and removes its directory — each step runs even if others fail.
"""
