"""Build the hostile corpus (tests/fixtures/hostile/) into inputs labreport takes.

``hostile_snapshot(markers)`` is the live sample (a real node's snapshot) with every name
a student or a node controls replaced by a payload of payloads.json — node, pods,
containers, network namespaces, Services, HPAs, Deployments, volumes, title — plus
wrong-shape cluster objects and every secret form of the catalogue planted where
collection puts them (process command lines, container labels and env, evidence,
annotations, pod specs). Replacements are consistent (a pod renamed everywhere it is
named), so the analysis still joins what it joined before.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from tests.support.secrets_catalogue import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ROOT / "tests" / "fixtures" / "hostile"
SAMPLE = ROOT / "samples" / "live-containerd-docker-node" / "snapshot.json"


def payloads(marker_txt: Path, marker_png: Path) -> dict[str, str]:
    raw = json.loads((HOSTILE / "payloads.json").read_text("utf-8"))
    return {p["id"]: p["text"].replace("@MARKER_TXT@", str(marker_txt)).replace("@MARKER_PNG@", str(marker_png))
            for p in raw}


def planted_secrets() -> list[str]:
    return [secret for _, _, secret, _ in CATALOGUE]


def _replace_strings(value: Any, table: dict[str, str]) -> Any:
    if isinstance(value, str):
        if value in table:
            return table[value]
        for old, new in table.items():
            if len(old) >= 3 and f"_{old}_" in value:  # docker's k8s_<container>_<pod>_<ns>_<uid>_<n>
                value = value.replace(f"_{old}_", f"_{new}_")
        return value
    if isinstance(value, list):
        return [_replace_strings(v, table) for v in value]
    if isinstance(value, dict):
        return {k: _replace_strings(v, table) for k, v in value.items()}
    return value


def hostile_snapshot(p: dict[str, str]) -> dict[str, Any]:
    data = json.loads(SAMPLE.read_text("utf-8"))
    node = data["nodes"][0]
    table = {
        node["name"]: p["script"],
        "web": p["img-onerror"], "dweb": p["dot-html-img"], "fileserver": p["md-js-link"],
        "downloader": p["dot-html-href"], "httpd": p["dot-quote-break"],
    }
    for i, ns in enumerate(node["netns"]):
        if ns.get("kind") != "node" and ns.get("name"):
            table[ns["name"]] = [p["iframe-file"], p["svg-onload"], p["mermaid"], p["attr-break"]][i % 4]
    data = _replace_strings(data, table)
    data["title"] = p["md-ref-link"] + " " + p["placeholder"]
    data["origin_note"] = p["style-file"] + p["meta-refresh"]
    node = data["nodes"][0]
    # every secret form where collection puts it: ps, labels/env, evidence
    for i, (_form, example, _secret, _kind) in enumerate(CATALOGUE):
        node["processes"].append({"pid": 50000 + i, "user": "root", "command": example.replace("\n", " ")})
    if node["containers"]:
        c = node["containers"][0]
        c.setdefault("labels", {})["hostile.example/env"] = " ".join(e for _, e, _, _ in CATALOGUE[:10])
        c.setdefault("annotations", {})["hostile.example/note"] = p["table-break"]
    node["evidence"].append({"id": "hostile", "command": p["code-break"], "origin": "import",
                             "stdout": "\n".join(e for _, e, _, _ in CATALOGUE) + "\n" + p["entity"]})
    # a second node: a path-traversal name and the control characters
    other = copy.deepcopy(node)
    other["name"] = p["path"] + p["control"]
    for c in other["containers"]:
        c["id"] = "f" + c["id"][1:]
    data["nodes"].append(other)
    data["cluster"] = _cluster(p)
    return data


def _cluster(p: dict[str, str]) -> dict[str, Any]:
    env = [{"name": "PASSWORD", "value": "EnvPw789Corpus"}, {"name": "GREETING", "value": p["entity"]}]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": p["img-onerror"], "namespace": p["md-js-link"],
                        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(
                            {"kind": "Pod", "metadata": {"name": p["script"]},
                             "spec": {"containers": [{"name": p["dot-html-img"], "env": env}]}})}},
           "spec": {"nodeName": p["script"], "containers": [{
               "name": p["dot-html-img"], "image": p["attr-break"], "env": env,
               "args": ["--user", "app", "--password", "ArgvPw123Corpus"],
               "ports": [{"containerPort": 80, "name": p["svg-onload"]}],
               "volumeMounts": [{"name": p["md-image-file"], "mountPath": p["iframe-file"]}]}],
               "volumes": [{"name": p["md-image-file"], "hostPath": {"path": p["style-file"]}}]},
           "status": {"podIP": "10.244.0.5", "phase": p["script"]}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": p["dot-html-href"], "namespace": "default"},
           "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10",
                    "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP", "name": p["mermaid"]}],
                    "selector": {"app": p["script"]}}}
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": p["svg-onload"]},
              "spec": {"replicas": 3, "selector": {"matchLabels": {"app": p["script"]}},
                       "template": {"metadata": {"labels": {"app": p["script"]}}, "spec": {
                           "containers": [{"name": p["iframe-file"], "image": "nginx",
                                           "command": ["sh", "-c", "mysql -uroot -pMyS3cretPwCorpus db"],
                                           "volumeMounts": [{"name": p["dot-html-img"], "mountPath": "/data"}]}],
                           "volumes": [{"name": p["dot-html-img"], "hostPath": {"path": "/pod"}}]}}}}
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": p["md-ref-link"], "namespace": "default"},
           "spec": {"scaleTargetRef": {"kind": "Deployment", "name": p["svg-onload"]}, "minReplicas": 1,
                    "maxReplicas": 5, "metrics": [{"type": "Resource", "resource": {
                        "name": p["script"], "target": {"type": "Utilization", "averageUtilization": 50}}}]},
           "status": {"conditions": [{"type": p["img-onerror"], "status": "True", "message": p["iframe-file"]}]}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
              "data": {"password": "U2VjcmV0RGF0YUNvcnB1cw=="}}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kubeconfig", "namespace": "kube-system"},
          "data": {"kubeconfig.conf": "users:\n- name: admin\n  user:\n    token: kc-token-corpus-91\n"
                                      "    client-key-data: LS0tQ29ycHVzS2V5RGF0YQ==\n"}}
    wrong = [d for d in yaml.safe_load_all((HOSTILE / "wrong-shape.yaml").read_text("utf-8")) if d]
    return {"source": "import", "pods": [pod] + [d for d in wrong if d.get("kind") == "Pod"],
            "services": [svc] + [d for d in wrong if d.get("kind") == "Service"],
            "deployments": [deploy] + [d for d in wrong if d.get("kind") == "Deployment"],
            "hpas": [hpa] + [d for d in wrong if d.get("kind") == "HorizontalPodAutoscaler"],
            "nodes": [d for d in wrong if d.get("kind") == "Node"],
            "configmaps": [cm], "other": [secret],
            "manifests": [{"kind": "Pod", "namespace": "default", "name": p["script"], "source": "cleaned",
                           "manifest": pod}]}


CORPUS_SECRETS = ["EnvPw789Corpus", "ArgvPw123Corpus", "MyS3cretPwCorpus", "U2VjcmV0RGF0YUNvcnB1cw==",
                  "kc-token-corpus-91", "LS0tQ29ycHVzS2V5RGF0YQ=="]
