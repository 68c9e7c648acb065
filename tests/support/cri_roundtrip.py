"""A real gRPC round trip through the committed CRI stubs, over a unix socket: a server
(``add_RuntimeServiceServicer_to_server``) answering Version and ListContainers, and the
client stub calling both. Prints ``grpcio <v> protobuf <v> ok`` on success.

Run as a script so it can be tried under other grpcio/protobuf versions than the installed
ones (``PYTHONPATH=<dir with other versions>:<repo> python3 tests/support/cri_roundtrip.py``);
tests/test_proto_stubs.py runs it with the installed ones.
"""

from __future__ import annotations

import os
import sys
import tempfile
from concurrent import futures
from pathlib import Path


def main() -> int:
    import google.protobuf
    import grpc

    from collectors.proto import api_pb2, api_pb2_grpc

    class Runtime(api_pb2_grpc.RuntimeServiceServicer):
        def Version(self, request, context):  # noqa: N802
            return api_pb2.VersionResponse(version="0.1.0", runtime_name="roundtrip", runtime_version="1.0",
                                           runtime_api_version="v1")

        def ListContainers(self, request, context):  # noqa: N802
            c = api_pb2.Container(id="c1", pod_sandbox_id="s1", labels={"io.kubernetes.pod.name": "web"},
                                  state=api_pb2.CONTAINER_RUNNING, image_ref="sha256:abc")
            return api_pb2.ListContainersResponse(containers=[c] if request.filter.id in ("", "c1") else [])

    d = tempfile.mkdtemp(prefix="lr-cri-")
    sock = os.path.join(d, "cri.sock")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    api_pb2_grpc.add_RuntimeServiceServicer_to_server(Runtime(), server)
    server.add_insecure_port(f"unix://{sock}")
    server.start()
    try:
        with grpc.insecure_channel(f"unix://{sock}") as ch:
            stub = api_pb2_grpc.RuntimeServiceStub(ch)
            v = stub.Version(api_pb2.VersionRequest(version="v1"), timeout=10)
            assert v.runtime_name == "roundtrip", v
            r = stub.ListContainers(api_pb2.ListContainersRequest(filter=api_pb2.ContainerFilter(id="c1")), timeout=10)
            assert [c.id for c in r.containers] == ["c1"] and r.containers[0].labels["io.kubernetes.pod.name"] == "web"
            assert r.containers[0].state == api_pb2.CONTAINER_RUNNING
    finally:
        server.stop(0)
        Path(sock).unlink(missing_ok=True)
        os.rmdir(d)
    print(f"grpcio {grpc.__version__} protobuf {google.protobuf.__version__} ok")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    sys.exit(main())
