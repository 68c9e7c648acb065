"""``labreport collect --in-cluster``: every node collected through the Kubernetes API, a
short-lived privileged pod per node — no SSH, no image to pull.

Per node (at most ``-j/--parallel`` at once, all within ``--deadline``):

1. Create a Pod in the ``labreport`` namespace (``--namespace``) with ``nodeName`` set (no
   scheduler), ``hostPID``/``hostNetwork``/``hostIPC``, ``privileged``, every taint
   tolerated, no service-account token, ``restartPolicy: Never``,
   ``activeDeadlineSeconds`` (the kubelet stops it even if we vanish) and the labels
   ``app.kubernetes.io/managed-by=labreport`` + ``labreport.io/expires=<epoch>`` (a later
   run deletes any such pod past its time: the backstop for a coordinator killed with
   SIGKILL).
2. **Air-gapped by construction.** The image is one the node already has — the pause
   image kubelet itself runs every pod with (found in the Node's ``status.images``), with
   ``imagePullPolicy: Never`` — and nothing in it is used: the container's command is
   the *host's* dynamic loader running the *host's* ``nsenter`` with the host's libraries,
   all through ``/proc/1/root`` (hostPID: PID 1 is the node's init)::

       /proc/1/root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path /proc/1/root/... \\
           /proc/1/root/usr/bin/nsenter -t 1 -m -u -i -n -p -- python3 -c FRAMER labreport collect --local …

   so the collector is the node's own labreport (as over SSH; ``--remote-command`` names
   another), run in the host's namespaces with the host's runtime socket and
   /var/run/netns. ``--image IMG`` instead uses an image that has ``nsenter`` (busybox has
   it) and runs plain ``nsenter -t 1 …``.
3. The output comes back as the pod's log (``follow``), framed by a tiny stdlib-only Python
   program (FRAMER): the collector's stdout zlib-compressed and base64'd in ``LRD1:`` lines
   under 16 KiB (no CRI partial lines), then ``LRE1:<exit> <bytes> <sha256>``. Other lines
   are the collector's stderr (the runtime interleaves both streams), kept only as a tail
   for messages. Decoding is incremental and capped (``--max-node-output``, also against
   decompression bombs): memory is bounded by one chunk, the node's JSON is spooled.
4. The pod is deleted (grace 0) when its node is done, failed or timed out, and every pod
   of the run in a ``finally`` (Ctrl-C, SIGTERM, ``--deadline``, a crash).

Each node's failure is its own ``NodeSnapshot(status="failed", source="pod")`` with the
reason and the fix: a pod that never leaves Pending (with the kubelet's waiting reason),
a pod killed mid-run (its termination reason), a 403 (the RBAC rule to apply), a missing
namespace (the manifest to apply). RBAC: ``labreport/cluster/deploy/rbac.yaml``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
import threading
import time
import uuid
import zlib
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Callable, Optional, Sequence

from labreport.snapshot import CollectorStatus, NodeSnapshot
from labreport.transport.ssh import DEFAULT_MAX_OUTPUT, parse_remote_snapshot, remote_timeout

NAMESPACE = "labreport"
CONTAINER = "collector"
LABELS = {"app.kubernetes.io/name": "labreport-collector", "app.kubernetes.io/managed-by": "labreport"}
SELECTOR = ",".join(f"{k}={v}" for k, v in LABELS.items())
RUN_LABEL = "labreport.io/run"
EXPIRES_LABEL = "labreport.io/expires"
NODE_ANNOTATION = "labreport.io/node"
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CHUNK = 9000  # raw bytes per LRD1 line: 12,000 base64 characters, under CRI's 16 KiB line split

# the host's loader and libraries, per architecture (Node status.nodeInfo.architecture)
LOADERS = {
    "amd64": ("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
              "/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib64:/usr/lib64"),
    "arm64": ("/usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1",
              "/lib/aarch64-linux-gnu:/usr/lib/aarch64-linux-gnu:/lib64:/usr/lib64"),
}
NSENTER = "/usr/bin/nsenter"
HOST_ENTRY = ["-t", "1", "-m", "-u", "-i", "-n", "-p", "--"]

# Runs on the node (stdlib only, any python3): the collector's stdout framed into log lines.
FRAMER = r"""
import base64, hashlib, os, subprocess, sys, zlib
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
z = zlib.compressobj(6); h = hashlib.sha256(); n = 0; w = sys.stdout.write
def emit(b):
    for i in range(0, len(b), %d):
        w("LRD1:" + base64.b64encode(b[i:i + %d]).decode() + "\n")
while True:
    c = os.read(p.stdout.fileno(), 65536)
    if not c:
        break
    n += len(c); h.update(c); emit(z.compress(c)); sys.stdout.flush()
emit(z.flush()); rc = p.wait()
w("LRE1:%%d %%d %%s\n" %% (rc, n, h.hexdigest())); sys.stdout.flush()
""" % (CHUNK, CHUNK)


class PodFailure(Exception):
    def __init__(self, message: str, fix: Optional[str] = None):
        super().__init__(message)
        self.fix = fix


def rbac_manifest() -> str:
    return resources.files("labreport.cluster").joinpath("deploy/rbac.yaml").read_text(encoding="utf-8")


def rbac_path() -> str:
    return str(resources.files("labreport.cluster").joinpath("deploy/rbac.yaml"))


def _api_error(exc: BaseException) -> tuple[Optional[int], str]:
    from labreport.cluster.api import _describe_error

    return getattr(exc, "status", None), _describe_error(exc)


# --------------------------------------------------------------------------- nodes


@dataclass
class NodeInfo:
    name: str
    architecture: str = "amd64"
    images: list[str] = field(default_factory=list)
    ready: Optional[bool] = None


def list_nodes(api_client: Any, selector: Optional[str] = None, timeout: float = 30.0) -> list[NodeInfo]:
    """The cluster's nodes (``-l`` selects by label), read as JSON (paged)."""
    from kubernetes import client

    from labreport.cluster.api import _list_all

    core = client.CoreV1Api(api_client)

    def fn(**kw: Any) -> Any:
        if selector:
            kw["label_selector"] = selector
        return core.list_node(**kw)

    out = []
    for item in _list_all(fn, timeout, "v1", "Node"):
        md, st = item.get("metadata") or {}, item.get("status") or {}
        images = [n for img in st.get("images") or [] for n in (img.get("names") or []) if isinstance(n, str)]
        cond = {c.get("type"): c.get("status") for c in st.get("conditions") or [] if isinstance(c, dict)}
        out.append(NodeInfo(name=str(md.get("name")), architecture=str((st.get("nodeInfo") or {}).get("architecture")
                                                                       or "amd64"),
                            images=images, ready=None if "Ready" not in cond else cond["Ready"] == "True"))
    return out


def pick_image(info: NodeInfo) -> Optional[str]:
    """An image the node already has: the pause image first (every node runs it), then
    kube-proxy's; by tag, not digest, as kubelet references them."""
    tagged = [n for n in info.images if "@" not in n]
    for want in ("/pause:", "pause:", "/kube-proxy:"):
        for n in tagged:
            if want in n:
                return n
    return None


# --------------------------------------------------------------------------- the pod


def collector_argv(remote_command: Optional[str], node: str, timeout: float, cri_socket: Optional[str]) -> list[str]:
    import shlex

    base = shlex.split(remote_command) if remote_command else ["labreport"]
    argv = base + ["collect", "--local", "--out", "-", "--name", node, "--timeout", f"{remote_timeout(timeout):g}"]
    if cri_socket:
        argv += ["--cri-socket", cri_socket]
    return argv


def pod_command(arch: str, image_given: bool, collector: list[str]) -> list[str]:
    inner = ["python3", "-c", FRAMER] + collector
    if image_given:
        return ["nsenter"] + HOST_ENTRY + inner
    loader, libs = LOADERS.get(arch, LOADERS["amd64"])
    host = "/proc/1/root"
    lib_path = ":".join(host + d for d in libs.split(":"))
    return [host + loader, "--library-path", lib_path, host + NSENTER] + HOST_ENTRY + inner


def pod_manifest(name: str, namespace: str, node: str, image: str, command: list[str], *, run_id: str,
                 deadline_s: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": namespace,
            "labels": dict(LABELS, **{RUN_LABEL: run_id, EXPIRES_LABEL: str(int(time.time()) + deadline_s + 60)}),
            "annotations": {NODE_ANNOTATION: node},
        },
        "spec": {
            "nodeName": node,
            "hostNetwork": True, "hostPID": True, "hostIPC": True,
            "restartPolicy": "Never",
            "activeDeadlineSeconds": deadline_s,
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{
                "name": CONTAINER, "image": image, "imagePullPolicy": "Never",
                "command": command,
                "env": [{"name": "PATH", "value": HOST_PATH}],
                "securityContext": {"privileged": True},
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
            }],
        },
    }


def _waiting_reason(pod: dict[str, Any]) -> str:
    st = pod.get("status") or {}
    for cs in st.get("containerStatuses") or []:
        w = (cs.get("state") or {}).get("waiting")
        if w:
            return f"{w.get('reason') or 'waiting'}" + (f": {w['message']}" if w.get("message") else "")
    for c in st.get("conditions") or []:
        if c.get("status") == "False" and (c.get("reason") or c.get("message")):
            return f"{c.get('type')}: {c.get('reason') or ''} {c.get('message') or ''}".strip()
    return st.get("reason") or "no status from the kubelet yet"


def _terminated(pod: dict[str, Any]) -> Optional[dict[str, Any]]:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        t = (cs.get("state") or {}).get("terminated")
        if isinstance(t, dict) and t:
            return t
    return None


class _Decoder:
    """LRD1/LRE1 log lines -> the collector's stdout in ``sink``, capped."""

    def __init__(self, sink: Any, cap: int):
        self.sink, self.cap = sink, cap
        self.z = zlib.decompressobj()
        self.h = hashlib.sha256()
        self.total = 0
        self.end: Optional[tuple[int, int, str]] = None
        self.stderr: deque[str] = deque(maxlen=20)
        self._buf = b""

    def feed(self, data: bytes) -> None:
        self._buf += data
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > 4 * CHUNK + 1024:  # no framer line is this long: not ours
                    raise PodFailure(f"the pod's log is not the collector's framing (a line over {len(self._buf)} "
                                     "bytes without a newline)")
                return
            line, self._buf = self._buf[:nl], self._buf[nl + 1:]
            self._line(line.rstrip(b"\r"))

    def _line(self, line: bytes) -> None:
        if line.startswith(b"LRD1:"):
            if self.end is not None:
                raise PodFailure("data after the end of the collector's output in the pod's log")
            try:
                raw = base64.b64decode(line[5:], validate=True)
            except ValueError:
                raise PodFailure("the pod's log holds a corrupt data line (not base64)") from None
            self._inflate(raw)
        elif line.startswith(b"LRE1:"):
            parts = line[5:].decode("ascii", "replace").split()
            if len(parts) == 3 and parts[0].lstrip("-").isdigit() and parts[1].isdigit():
                self._inflate(None)
                self.end = (int(parts[0]), int(parts[1]), parts[2])
        else:
            self.stderr.append(line.decode("utf-8", "replace")[:500])

    def _inflate(self, raw: Optional[bytes]) -> None:
        try:
            data = raw if raw is not None else b""
            while True:
                out = self.z.decompress(data, max(1, self.cap - self.total + 1))
                self._put(out)
                data = self.z.unconsumed_tail
                if not data:
                    break
            if raw is None:
                self._put(self.z.flush())
        except zlib.error as exc:
            raise PodFailure(f"the pod's log holds corrupt compressed data ({exc})") from None

    def _put(self, out: bytes) -> None:
        if not out:
            return
        self.total += len(out)
        if self.total > self.cap:
            raise OutputTooLargeError(self.cap)
        self.h.update(out)
        self.sink.write(out)

    def stderr_tail(self) -> str:
        lines = [ln for ln in self.stderr if ln.strip()]
        return lines[-1] if lines else ""


class OutputTooLargeError(PodFailure):
    def __init__(self, cap: int):
        super().__init__(f"the collector sent more than {cap / 1048576:g} MiB (--max-node-output): the output was cut "
                         "there and the node's data dropped (a runaway or hostile collector?)",
                         fix="check what the node prints, or raise --max-node-output if the node really is that large")


# --------------------------------------------------------------------------- the run


@dataclass
class PodRun:
    """One collection run: its pods, and the cleanup that removes them all."""

    api_client: Any
    namespace: str = NAMESPACE
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    created: dict[str, str] = field(default_factory=dict)  # pod name -> node
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client)

    def delete(self, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0, _request_timeout=15,
                                            _preload_content=False)
        except ApiException as exc:
            if exc.status != 404:
                raise
        with self.lock:
            self.created.pop(name, None)

    def delete_all(self) -> list[str]:
        """Delete every pod this run created; the names that could not be deleted."""
        left = []
        with self.lock:
            names = list(self.created)
        for name in names:
            try:
                self.delete(name)
            except Exception:
                left.append(name)
        return left

    def sweep_expired(self) -> int:
        """Delete collector pods of earlier runs past their expiry (a coordinator that was
        killed outright). Errors are ignored: this is a backstop."""
        try:
            resp = self.core.list_namespaced_pod(self.namespace, label_selector=SELECTOR, _preload_content=False,
                                                 _request_timeout=15)
            items = json.loads(resp.data).get("items") or []
        except Exception:
            return 0
        now, n = int(time.time()), 0
        for pod in items:
            exp = ((pod.get("metadata") or {}).get("labels") or {}).get(EXPIRES_LABEL, "")
            if exp.isdigit() and int(exp) < now:
                try:
                    self.core.delete_namespaced_pod(pod["metadata"]["name"], self.namespace, grace_period_seconds=0,
                                                    _request_timeout=15, _preload_content=False)
                    n += 1
                except Exception:
                    pass
        return n

    def collect_one(self, index: int, info: NodeInfo, *, image: Optional[str], remote_command: Optional[str],
                    timeout: float, start_timeout: float, cri_socket: Optional[str], max_output: int,
                    phase: Callable[[str], None], stop: threading.Event) -> NodeSnapshot:
        from kubernetes.client.exceptions import ApiException

        node = info.name
        started = time.monotonic()
        img = image or pick_image(info)
        if img is None:
            raise PodFailure(f"node {node} reports no image to reuse (no pause or kube-proxy image in its "
                             "status.images)", fix="give an image the nodes already have: --image IMG (one with nsenter, "
                                                  "e.g. busybox), or load one: ctr -n k8s.io images import busybox.tar")
        name = f"labreport-{self.run_id}-{index}"
        deadline_s = int(timeout + start_timeout + 30)
        body = pod_manifest(name, self.namespace, node, img,
                            pod_command(info.architecture, image is not None,
                                        collector_argv(remote_command, node, timeout, cri_socket)),
                            run_id=self.run_id, deadline_s=deadline_s)
        phase("creating the collector pod")
        with self.lock:
            self.created[name] = node
        try:
            self.core.create_namespaced_pod(self.namespace, body, _request_timeout=30, _preload_content=False)
        except ApiException as exc:
            with self.lock:
                self.created.pop(name, None)
            status, text = _api_error(exc)
            if status == 403:
                raise PodFailure(f"the API refused the collector pod on {node}: {text}",
                                 fix=f"let your user create collector pods in namespace {self.namespace}: "
                                     f"kubectl apply -f {rbac_path()} (then bind it: see the file's comments)") from None
            if status == 404:
                raise PodFailure(f"namespace {self.namespace} does not exist ({text})",
                                 fix=f"kubectl apply -f {rbac_path()} (creates it, with PodSecurity privileged "
                                     "for it alone)") from None
            raise PodFailure(f"the collector pod on {node} could not be created: {text}") from None
        try:
            return self._follow(name, node, img, started, timeout=timeout, start_timeout=start_timeout,
                                max_output=max_output, phase=phase, stop=stop)
        finally:
            try:
                self.delete(name)
            except Exception:  # delete_all() tries again at the end
                pass

    def _read(self, name: str) -> Optional[dict[str, Any]]:
        from kubernetes.client.exceptions import ApiException

        try:
            resp = self.core.read_namespaced_pod(name, self.namespace, _request_timeout=15, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        pod: dict[str, Any] = json.loads(resp.data)
        return pod

    def _follow(self, name: str, node: str, image: str, started: float, *, timeout: float, start_timeout: float,
                max_output: int, phase: Callable[[str], None], stop: threading.Event) -> NodeSnapshot:
        from kubernetes.client.exceptions import ApiException

        phase(f"waiting for pod {name} to start")
        t_start = time.monotonic()
        while True:
            if stop.is_set():
                raise PodFailure("stopped (the run's --deadline passed or it was interrupted)")
            pod = self._read(name)
            if pod is None:
                raise PodFailure(f"the collector pod {name} on {node} was deleted before it started")
            ph = (pod.get("status") or {}).get("phase")
            if ph in ("Running", "Succeeded", "Failed"):
                break
            if time.monotonic() - t_start > start_timeout:
                raise PodFailure(f"the collector pod {name} on {node} did not start within {start_timeout:g}s "
                                 f"(Pending: {_waiting_reason(pod)})",
                                 fix=f"kubectl -n {self.namespace} describe pod {name} while it runs (events: image "
                                     f"{image} not on the node, node not ready, admission), or raise --pod-start-timeout")
            time.sleep(0.3)
        phase("collecting (pod log)")
        t_run = time.monotonic()
        out = tempfile.SpooledTemporaryFile(max_size=1 << 20)
        dec = _Decoder(out, max_output)
        try:
            try:
                resp = self.core.read_namespaced_pod_log(name, self.namespace, container=CONTAINER, follow=True,
                                                         _preload_content=False,
                                                         _request_timeout=(15, max(5.0, timeout)))
            except ApiException as exc:
                status, text = _api_error(exc)
                hint = (f"allow `get pods/log` in namespace {self.namespace}: kubectl apply -f {rbac_path()}"
                        if status == 403 else None)
                raise PodFailure(f"the log of the collector pod {name} on {node} could not be read: {text}",
                                 fix=hint) from None
            try:
                while True:
                    if stop.is_set():
                        raise PodFailure("stopped while collecting (the run's --deadline passed or it was interrupted)")
                    if time.monotonic() - t_run > timeout:
                        raise TimeoutError
                    chunk = resp.read(65536)
                    if not chunk:
                        break
                    dec.feed(chunk)
                    if dec.end is not None:
                        break
            except TimeoutError:
                raise PodFailure(f"timed out after {timeout:g}s (collecting in pod {name})",
                                 fix="raise --timeout, or check the node (is the collector stuck?)") from None
            except PodFailure:
                raise
            except Exception as exc:  # the stream broke: a read timeout, a reset
                raise PodFailure(f"the log stream of pod {name} on {node} broke: {type(exc).__name__}: {exc}") from None
            finally:
                resp.release_conn() if hasattr(resp, "release_conn") else None
            if dec.end is None:
                pod = self._read(name)
                if pod is None:
                    raise PodFailure(f"the collector pod {name} on {node} was deleted while it ran")
                term = _terminated(pod)
                # the kubelet may take a moment to report the end
                for _ in range(20):
                    if term is not None:
                        break
                    time.sleep(0.25)
                    pod = self._read(name) or pod
                    term = _terminated(pod)
                why = (f"{term.get('reason') or 'terminated'}, exit code {term.get('exitCode')}"
                       + (f", signal {term['signal']}" if term.get("signal") else "") if term else
                       f"phase {(pod.get('status') or {}).get('phase')}")
                tail = dec.stderr_tail()
                raise PodFailure(f"the collector pod {name} on {node} ended before the collector finished "
                                 f"({why}; killed?)" + (f": {tail}" if tail else ""),
                                 fix=f"check the node; kubectl -n {self.namespace} get events shows why a pod is killed")
            rc, nbytes, digest = dec.end
            if nbytes != dec.total or digest != dec.h.hexdigest():
                raise PodFailure(f"the collector's output from pod {name} arrived damaged "
                                 f"({dec.total} of {nbytes} bytes, checksum {'ok' if digest == dec.h.hexdigest() else 'wrong'})")
            out.seek(0)
            text = out.read().decode("utf-8", "replace")
        finally:
            out.close()
        try:
            snap = parse_remote_snapshot(text, node)
        except Exception:
            tail = dec.stderr_tail()
            if rc == 127 or "not found" in tail or "No such file" in tail:
                raise PodFailure(f"labreport is not installed on {node} (exit status {rc}" + (f": {tail})" if tail else ")"),
                                 fix="install it on the node (pip install labreport), or name it with "
                                     "--remote-command PATH") from None
            raise PodFailure(f"the collector in pod {name} on {node} failed (exit status {rc}) and printed no snapshot"
                             + (f": {tail}" if tail else "")) from None
        snap.source = "pod"
        snap.transport = {"pod": name, "namespace": self.namespace, "node": node, "image": image,  # type: ignore[attr-defined]
                          "exit_status": rc, "bytes": dec.total, "duration_s": round(time.monotonic() - started, 3)}
        return snap


def failed_pod_node(name: str, error: str, fix: Optional[str], duration: float) -> NodeSnapshot:
    import datetime as _dt

    return NodeSnapshot(
        name=name, source="pod", status="failed", error=error,
        collected_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        collectors=[CollectorStatus(name="pod", ok=False, reason=error, fix=fix, duration_s=round(duration, 3))])


def collect_via_pods(api_client: Any, nodes: Sequence[NodeInfo], *, namespace: str = NAMESPACE,
                     image: Optional[str] = None, remote_command: Optional[str] = None, timeout: float = 60.0,
                     start_timeout: float = 60.0, cri_socket: Optional[str] = None, parallel: int = 32,
                     deadline: Optional[float] = None, parts: Any = None, max_output: int = DEFAULT_MAX_OUTPUT,
                     progress: Any = None) -> list[NodeSnapshot]:
    """One NodeSnapshot per node, in order (stubs when ``parts`` writes them to disk).
    Every pod this run creates is deleted before it returns, whatever happens."""
    run = PodRun(api_client, namespace=namespace)
    run.sweep_expired()
    stop = threading.Event()
    results: list[Optional[NodeSnapshot]] = [None] * len(nodes)
    phases: dict[int, str] = {}

    def upd(node: str, text: str, done: bool = False) -> None:
        if progress is not None:
            progress.update(node, text, done=done)

    def work(i: int, info: NodeInfo) -> None:
        t0 = time.monotonic()

        def phase(text: str) -> None:
            phases[i] = text
            upd(info.name, text)

        try:
            snap = run.collect_one(i, info, image=image, remote_command=remote_command, timeout=timeout,
                                   start_timeout=start_timeout, cri_socket=cri_socket, max_output=max_output,
                                   phase=phase, stop=stop)
        except PodFailure as exc:
            snap = failed_pod_node(info.name, str(exc), exc.fix, time.monotonic() - t0)
        except Exception as exc:  # one node's trouble never costs the others
            from labreport.cluster.api import _describe_error

            snap = failed_pod_node(info.name, f"{type(exc).__name__}: {_describe_error(exc)}", None,
                                   time.monotonic() - t0)
        results[i] = parts.write(i, snap) if parts is not None else snap
        upd(info.name, f"[red]failed[/]: {snap.error}" if snap.status == "failed" else
            f"[green]{snap.status}[/] ({time.monotonic() - t0:.1f}s)", done=True)

    pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="labreport-pod")
    futures: list[Future[None]] = []
    undeleted: list[str] = []
    try:
        futures = [pool.submit(work, i, n) for i, n in enumerate(nodes)]
        end = None if deadline is None else time.monotonic() + deadline
        pending = set(futures)
        while pending:
            remaining = 1.0 if end is None else max(0.0, end - time.monotonic())
            _done, pending = wait(pending, timeout=remaining, return_when=FIRST_COMPLETED)
            if end is not None and time.monotonic() >= end and pending:
                break
    finally:
        stop.set()
        for f in futures:
            f.cancel()
        run.delete_all()  # ends the log streams too
        pool.shutdown(wait=True, cancel_futures=True)
        undeleted = run.delete_all()
    for i, info in enumerate(nodes):
        if results[i] is None:
            where = phases.get(i)
            why = (f"not finished by the --deadline of {deadline:g}s ({where})" if where else
                   f"not started before the --deadline of {deadline:g}s") if deadline is not None else "not collected"
            snap = failed_pod_node(info.name, why, "raise --deadline or -j/--parallel", 0.0)
            results[i] = parts.write(i, snap) if parts is not None else snap
    if undeleted:
        import sys

        names = ", ".join(sorted(set(undeleted)))

        print(f"labreport: could not delete collector pod(s) {names} in namespace {namespace}: "
              f"kubectl -n {namespace} delete pod -l {SELECTOR}", file=sys.stderr)
    return [r for r in results if r is not None]
