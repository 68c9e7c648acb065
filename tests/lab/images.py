"""Container images built locally (no registry is reachable): a pause image from a small
static C program and an app image from the static busybox, as an OCI image layout tar
(for ``ctr images import``) and a docker-archive tar (for ``docker load``).

Both archives hold both images. They are built once per test session into a temp dir
(``build_images()`` caches them; the dir is removed at interpreter exit).
"""

from __future__ import annotations

import atexit
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from tests.lab.proc import LabError, run

PAUSE_IMAGE = "registry.k8s.io/pause:3.6"  # containerd 1.6's default sandbox_image
APP_IMAGE = "localhost/labreport/busybox-httpd:1.0"
BUSYBOX = Path("/bin/busybox")
APP_APPLETS = ("sh", "httpd", "wget", "sleep", "echo", "cat", "ls", "hostname", "ip", "mkdir")
CREATED = "2026-01-01T00:00:00Z"  # fixed, so image ids are stable across builds

PAUSE_C = r"""
/* pause: hold a pod's namespaces open; exit cleanly on SIGTERM/SIGINT. */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static void on_term(int sig) { (void)sig; _exit(0); }
static void on_chld(int sig) { (void)sig; }

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_chld;
    sigaction(SIGCHLD, &sa, NULL);
    for (;;)
        pause();
    return 1;
}
"""


@dataclass(frozen=True)
class ImageArchives:
    oci_tar: Path  # OCI image layout, both images, for `ctr -n k8s.io images import`
    docker_tar: Path  # docker-archive (manifest.json), both images, for `docker load`
    pause_image: str = PAUSE_IMAGE
    app_image: str = APP_IMAGE


@dataclass(frozen=True)
class _Image:
    tag: str
    layer: bytes
    config: bytes

    @property
    def layer_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.layer).hexdigest()

    @property
    def config_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.config).hexdigest()


def _tar_bytes(entries: list[tuple[str, bytes | None, int, str | None]]) -> bytes:
    """entries: (path, data or None for a dir, mode, symlink target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path, data, mode, link in entries:
            ti = tarfile.TarInfo(path)
            ti.mtime, ti.uid, ti.gid, ti.mode = 0, 0, 0, mode
            if link is not None:
                ti.type, ti.linkname = tarfile.SYMTYPE, link
                tf.addfile(ti)
            elif data is None:
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            else:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _config(layer: bytes, entrypoint: list[str], cmd: list[str] | None = None) -> bytes:
    cfg = {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Entrypoint": entrypoint,
            "Cmd": cmd,
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
        "history": [{"created": CREATED, "created_by": "labreport tests/lab/images.py"}],
    }
    return json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()


def _pause_image(pause_binary: bytes) -> _Image:
    layer = _tar_bytes([("pause", pause_binary, 0o755, None)])
    return _Image(PAUSE_IMAGE, layer, _config(layer, ["/pause"]))


def _app_image() -> _Image:
    bb = BUSYBOX.read_bytes()
    entries: list[tuple[str, bytes | None, int, str | None]] = [
        ("bin", None, 0o755, None),
        ("bin/busybox", bb, 0o755, None),
        *[(f"bin/{a}", None, 0o777, "busybox") for a in APP_APPLETS],
        ("etc", None, 0o755, None),
        ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644, None),
        ("etc/group", b"root:x:0:\n", 0o644, None),
        ("tmp", None, 0o1777, None),
        ("www", None, 0o755, None),
        ("www/index.html", b"busybox-httpd image default page\n", 0o644, None),
    ]
    layer = _tar_bytes(entries)
    return _Image(APP_IMAGE, layer, _config(layer, ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"]))


def compile_pause(workdir: Path) -> bytes:
    src = workdir / "pause.c"
    out = workdir / "pause"
    src.write_text(PAUSE_C)
    run(["gcc", "-static", "-Os", "-s", "-o", str(out), str(src)], timeout=120)
    return out.read_bytes()


def _write_oci_layout(images: list[_Image], path: Path) -> None:
    blobs: dict[str, bytes] = {}
    index_manifests = []
    for img in images:
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": img.config_digest, "size": len(img.config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": img.layer_digest, "size": len(img.layer)}],
        }, sort_keys=True, separators=(",", ":")).encode()
        mdigest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        blobs[img.layer_digest] = img.layer
        blobs[img.config_digest] = img.config
        blobs[mdigest] = manifest
        index_manifests.append({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": mdigest,
            "size": len(manifest),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": img.tag,
                            "org.opencontainers.image.ref.name": img.tag.rsplit(":", 1)[1]},
        })
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": index_manifests}, indent=1).encode()
    entries: list[tuple[str, bytes | None, int, str | None]] = [
        ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}', 0o644, None),
        ("index.json", index, 0o644, None),
        ("blobs", None, 0o755, None),
        ("blobs/sha256", None, 0o755, None),
    ]
    for digest, data in sorted(blobs.items()):
        entries.append((f"blobs/sha256/{digest.split(':', 1)[1]}", data, 0o644, None))
    path.write_bytes(_tar_bytes(entries))


def _write_docker_archive(images: list[_Image], path: Path) -> None:
    manifest = []
    entries: list[tuple[str, bytes | None, int, str | None]] = []
    for img in images:
        cfg_name = img.config_digest.split(":", 1)[1] + ".json"
        layer_dir = img.layer_digest.split(":", 1)[1]
        entries += [(cfg_name, img.config, 0o644, None), (layer_dir, None, 0o755, None),
                    (f"{layer_dir}/layer.tar", img.layer, 0o644, None)]
        manifest.append({"Config": cfg_name, "RepoTags": [img.tag], "Layers": [f"{layer_dir}/layer.tar"]})
    entries.insert(0, ("manifest.json", json.dumps(manifest).encode(), 0o644, None))
    path.write_bytes(_tar_bytes(entries))


_lock = threading.Lock()
_cached: ImageArchives | None = None


def build_images() -> ImageArchives:
    """Build (once per session) the OCI and docker archives holding the pause + app images."""
    global _cached
    with _lock:
        if _cached is not None and _cached.oci_tar.exists() and _cached.docker_tar.exists():
            return _cached
        if not BUSYBOX.exists():
            raise LabError(f"{BUSYBOX} missing: install busybox-static")
        workdir = Path(tempfile.mkdtemp(prefix="lr-images-"))
        atexit.register(shutil.rmtree, workdir, True)
        images = [_pause_image(compile_pause(workdir)), _app_image()]
        oci, docker_tar = workdir / "images-oci.tar", workdir / "images-docker.tar"
        _write_oci_layout(images, oci)
        _write_docker_archive(images, docker_tar)
        _cached = ImageArchives(oci_tar=oci, docker_tar=docker_tar)
        return _cached
