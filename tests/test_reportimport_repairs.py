"""The repairs `import --report` makes to what PDF / Word conversion does to pasted
outputs, each said as a warning. Inputs are lines of the seed reports (tests/fixtures/
seeds/raw) or the shapes the issue quotes from real reports."""

from __future__ import annotations

from labreport.parsers import get
from labreport.reportimport import import_text
from labreport.reportimport.assemble import same_rule
from labreport.reportimport.command import parser_for_command, split_prompt
from labreport.reportimport.extract import ReportText
from labreport.reportimport.node import role_word
from labreport.reportimport.repair import fix_comment_arrows, join_wrapped, repair_for, starts_iptables_row, strip_gutter
from labreport.reportimport.split import split_blocks
from labreport.reportimport.yamlfix import repair_manifest
from tests.conftest import FIXTURES

SEED001 = (FIXTURES / "seeds" / "raw" / "seed001.txt").read_text(encoding="utf-8").split("\n")


def test_pipe_gutter_is_removed_and_said():
    lines, msg = strip_gutter(SEED001[331:335])  # "1 | root@k8s-master:/home# kubectl get node" …
    assert lines[0] == "root@k8s-master:/home# kubectl get node"
    assert lines[1].startswith("NAME                STATUS")
    assert msg and "line-number column" in msg


def test_space_gutter_keeps_yaml_indentation_and_joins_wrapped_lines():
    lines, msg = strip_gutter(SEED001[678:687])  # "1  apiVersion: apps/v1" … "9        app: testpod"
    assert lines[:5] == ["apiVersion: apps/v1", "kind: Deployment", "metadata:", "  name: test-deployment", "spec:"]
    assert lines[8] == "      app: testpod"
    wrapped, msg = strip_gutter(SEED001[79:84])  # the sysctl prompt line wrapped by the page
    assert wrapped[0] == ("root@k8s-master:/etc/containerd# sysctl net.bridge.bridge-nf-call-iptables "
                          "net.bridge.bridge-nf-call-ip6tables net.ipv4.ip_forward")
    assert msg and "joined 1 wrapped line" in msg


def test_text_that_only_starts_with_numbers_is_not_a_gutter():
    lines = ["64 bytes from k8s-master (172.24.153.39): icmp_seq=1 ttl=64 time=2.38 ms",
             "64 bytes from k8s-master (172.24.153.39): icmp_seq=2 ttl=64 time=2.27 ms"]
    assert strip_gutter(lines) == (lines, None)


def test_wrapped_comment_is_joined_without_a_space_when_the_break_splits_a_name():
    # the rule: the PDF broke the quoted comment after "two-"
    rule = ['-A KUBE-SERVICES -d 10.96.5.5/32 -p tcp -m comment --comment "default/two-',
            'containers-service:http1 cluster IP" -m tcp --dport 80 -j KUBE-SVC-',
            "ABCDEFGHIJKLMNOP",
            "-A KUBE-SVC-ABCDEFGHIJKLMNOP -m comment --comment",
            '"default/two-containers-service:http1" -j KUBE-SEP-QRSTUVWXYZ234567']
    lines, done = repair_for("iptables-save", rule)
    assert lines[0] == ('-A KUBE-SERVICES -d 10.96.5.5/32 -p tcp -m comment --comment '
                        '"default/two-containers-service:http1 cluster IP" -m tcp --dport 80 '
                        "-j KUBE-SVC-ABCDEFGHIJKLMNOP")
    assert lines[1] == ('-A KUBE-SVC-ABCDEFGHIJKLMNOP -m comment --comment '
                        '"default/two-containers-service:http1" -j KUBE-SEP-QRSTUVWXYZ234567')
    assert done and "wrapped" in done[0]
    ipt = get("iptables-save").parse("\n".join(lines)).value
    (svc_rule,) = ipt.tables["nat"].chains["KUBE-SERVICES"].rules
    assert '"default/two-containers-service:http1 cluster IP"' in svc_rule.spec


def test_garbled_comment_arrow_is_repaired():
    line = SEED001[877]  # seed 001 Q10: --comment "default/test-service:downloader" --> 10.244.1.3:3000
    (fixed,), msg = fix_comment_arrows([line])
    assert '--comment "default/test-service:downloader -> 10.244.1.3:3000" -m statistic' in fixed
    assert msg


def test_join_wrapped_is_a_no_op_on_whole_rows():
    rows = ["-A KUBE-SEP-X -s 10.244.1.3/32 -j KUBE-MARK-MASQ", "-A KUBE-SEP-X -p tcp -j DNAT --to-destination 10.244.1.3:80"]
    assert join_wrapped(rows, starts_iptables_row, "rule") == (rows, None)


def test_duplicate_rules_ocr_vs_different_rules():
    grep = SEED001[877].replace('" --> 10.244.1.3:3000', ' -> 10.244.1.3:3000"').split(" ", 2)[2]
    ocr = SEED001[908].split(" ", 3)[3]  # the annotated paste: 0.33333333349, KUBE-SEP-2H3DDHW6CONVHAPW
    assert same_rule(grep, ocr)
    other = SEED001[878].replace('" --> 10.244.1.4:3000', ' -> 10.244.1.4:3000"').split(" ", 2)[2]
    assert not same_rule(grep, other)  # another endpoint, another probability


def test_prompts_commands_and_roles():
    assert split_prompt("root@k8s-worker:/etc/containerd# ip link show | grep 5") == (
        True, "k8s-worker", "ip link show | grep 5")
    assert split_prompt("root@testpod:/apps#") == (True, "testpod", "")
    assert split_prompt("# lsmod | grep br_netfilter")[0] is False  # a comment in a script
    assert parser_for_command("sudo iptables-save | grep test-service") == "iptables-save"
    assert parser_for_command("kubectl get endpoints test-service -o wide") == "kubectl-get"
    assert parser_for_command("kubectl get pod -o yaml") == "kubectl"
    assert parser_for_command("kubect1 get pods") == "kubectl-get"
    assert parser_for_command("ctr -n k8s.io c ls") == "ctr-containers"
    assert parser_for_command("ping k8s-master") is None
    assert role_word("回答：master节点上") == "master" and role_word("worker节点上") == "worker"
    assert role_word("从 https://github.com/flannel-io/flannel/blob/master/x 下载") is None
    assert role_word("发现master节点上没有变化，新创建的pod运行在了worker节点上") == "worker"


def test_page_break_joins_fenced_blocks_unless_the_second_starts_over():
    text = "\n".join(["```", "1  apiVersion: v1", "2  kind: Pod", "```", "", "```", "3  metadata:", "```",
                      "", "```", "1  apiVersion: v1", "2  kind: Service", "```"])
    blocks = split_blocks(text)
    assert [len(b.lines) for b in blocks] == [3, 2] and blocks[0].breaks == [2]


def test_yaml_that_cannot_be_repaired_unambiguously_is_damaged_not_nameless():
    text = "apiVersion: v1\nkind: Pod\nmetadata:\nspec:\n  containers:\n   - name: a\n  - name: b\n"
    fix = repair_manifest(text)
    assert fix.objects == [] and fix.damaged


def test_a_report_with_only_damaged_yaml_makes_no_object():
    report = ReportText(path="r.md", format="markdown", text="\n".join([
        "Q4 pod.yaml", "```", "apiVersion: v1", "kind: Pod", "metadata:", "spec:", "  containers:",
        "   - name: a", "  - name: b", "```"]))
    r = import_text(report)
    assert r.after.cluster is None or not r.after.cluster.pods
    (w,) = [w for w in r.warnings if w.code == "yaml_damaged"]
    assert w.args == {"kind": "Pod"} and w.fix


def test_kubectl_get_wide_pods_with_node_and_namespace_column():
    # the shape kubectl get pods -A -o wide prints (columns padded by tabwriter)
    text = ("NAMESPACE     NAME                       READY   STATUS    RESTARTS   AGE   IP           NODE         NOMINATED NODE   READINESS GATES\n"
            "default       testpod                    2/2     Running   0          94m   10.244.1.2   k8s-worker   <none>           <none>\n"
            "kube-system   kube-proxy-ctn44           1/1     Running   4 (80s ago)   9h    172.23.193.146   k8s-worker   <none>   <none>\n")
    rows = get("kubectl-get").parse(text).value
    assert [(r.namespace, r.name, r.columns.get("IP"), r.columns.get("NODE")) for r in rows] == [
        ("default", "testpod", "10.244.1.2", "k8s-worker"),
        ("kube-system", "kube-proxy-ctn44", "172.23.193.146", "k8s-worker")]
    assert rows[1].columns["RESTARTS"] == "4 (80s ago)"


def test_yaml_aliases_are_refused_not_expanded():
    bomb = "\n".join(["apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: lol",
                      'data: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
                      "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]", "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]",
                      "d: [*c,*c,*c,*c,*c,*c,*c,*c,*c]"])
    fix = repair_manifest(bomb)
    assert fix.objects == [] and "aliases" in (fix.damaged or "")


def test_garbage_and_odd_reports_never_raise_anything_but_a_clear_error(tmp_path):
    import random

    from labreport.reportimport import import_report
    from labreport.reportimport.extract import ReportReadError

    rnd = random.Random(12)
    cases = {
        "blank.txt": b"   \n\n",
        "bin.txt": bytes(rnd.randrange(256) for _ in range(5000)),
        "zip.docx": b"PK\x03\x04" + bytes(100),
        "long.md": b"```\n" + b"-A KUBE-SVC-X " * 20000 + b"\n```\n",
        "prompts.md": b"\n".join(b"root@h%d:~# crictl ps" % i for i in range(500)),
        "tables.txt": b"CONTAINER\tIMAGE\tCREATED\tSTATE\tNAME\tATTEMPT\tPOD ID\tPOD\n" + b"x\ty\n" * 2000,
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        try:
            r = import_report(str(p))
        except ReportReadError as exc:
            assert name in str(exc)
            continue
        assert r.after is not None


def test_an_output_the_text_gives_for_the_worker_with_the_masters_prompt():
    from labreport.analysis import analyze

    crictl = (FIXTURES / "seeds" / "seed001" / "master-crictl-ps.txt").read_text(encoding="utf-8")
    text = "\n".join([
        "```", "root@k8s-master:/home# kubectl get node",
        "NAME         STATUS   ROLES           AGE   VERSION",
        "k8s-master   Ready    control-plane   47m   v1.28.9",
        "k8s-worker   Ready    <none>          4m    v1.28.9", "```", "",
        "Q3 worker节点的显示：", "```", "root@k8s-master:/home# crictl ps", crictl, "```"])
    r = import_text(ReportText(path="r.md", format="markdown", text=text))
    (o,) = [o for o in r.outputs if o.parser == "crictl-ps"]
    assert o.node == "k8s-master" and o.stated_node == "k8s-worker"  # the prompt wins, the conflict is said
    assert any(w.code == "prompt_node" for w in r.warnings)
    a = analyze(r.after)
    (inc,) = [i for i in a.inconsistencies if i.kind == "prompt-node"]
    assert inc.node == "k8s-master" and "k8s-worker" in inc.detail


def test_hosts_named_without_roles_the_control_plane_one_is_the_master():
    """Prompts root@class and root@class2, prose saying master/worker: the host where kubectl
    is typed and kube-apiserver runs is the master; no third node "master" appears."""
    ps = (FIXTURES / "seeds" / "seed001" / "master-ps-aux-grep-kube.txt").read_text(encoding="utf-8")
    ps = ps.replace("root@k8s-master:/home#", "root@class:~#")
    crictl = (FIXTURES / "seeds" / "seed001" / "worker-crictl-ps-before.txt").read_text(encoding="utf-8")
    text = "\n".join(["Q2 master节点：", "```", ps, "```", "", "```", "root@class:~# kubectl get pods", "No resources found",
                      "```", "", "Q3 worker节点的显示：", "", crictl, "", "```", "root@class2:~# ip addr",
                      "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000",
                      "    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00", "```"])
    r = import_text(ReportText(path="r.md", format="markdown", text=text))
    assert [n.name for n in r.after.nodes] == ["class", "class2"]
    assert r.info.node_names == {"master": "class", "worker": "class2"}
    (c,) = [o for o in r.outputs if o.parser == "crictl-ps"]
    assert c.node == "class2" and c.node_from == "text before"
