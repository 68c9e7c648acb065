"""The committed CRI stubs (collectors/proto) are what generate.py produces from api.proto,
they import as collectors.proto.*, and they carry upstream runtime.v1's wire names."""

from __future__ import annotations

import importlib.metadata
import importlib.util

import pytest

from tests.conftest import ROOT

PROTO_DIR = ROOT / "collectors" / "proto"


def test_stubs_import_as_package_modules():
    from collectors.proto import api_pb2, api_pb2_grpc

    assert api_pb2.DESCRIPTOR.package == "runtime.v1"
    assert "from collectors.proto import api_pb2" in (PROTO_DIR / "api_pb2_grpc.py").read_text()
    # method paths are what a CRI server routes on
    service = api_pb2.DESCRIPTOR.services_by_name["RuntimeService"]
    assert {m.name for m in service.methods} >= {
        "Version", "RunPodSandbox", "StopPodSandbox", "RemovePodSandbox", "PodSandboxStatus",
        "ListPodSandbox", "CreateContainer", "StartContainer", "StopContainer",
        "RemoveContainer", "ListContainers", "ContainerStatus",
    }
    images = api_pb2.DESCRIPTOR.services_by_name["ImageService"]
    assert {m.name for m in images.methods} == {"ListImages", "ImageStatus"}
    assert hasattr(api_pb2_grpc, "RuntimeServiceStub") and hasattr(api_pb2_grpc, "ImageServiceStub")


def test_field_numbers_match_upstream_runtime_v1():
    """A few field numbers that matter on the wire (upstream api.proto), incl. the high ones."""
    from collectors.proto import api_pb2

    def num(msg: str, field: str) -> int:
        return api_pb2.DESCRIPTOR.message_types_by_name[msg].fields_by_name[field].number

    assert num("PodSandboxStatusResponse", "info") == 2
    assert num("PodSandboxStatus", "network") == 5
    assert num("PodSandboxStatus", "linux") == 6
    assert num("Container", "pod_sandbox_id") == 2
    assert num("Container", "image_ref") == 5
    assert num("Container", "image_id") == 10
    assert num("ContainerStatus", "mounts") == 14
    assert num("ImageSpec", "user_specified_image") == 18
    assert num("ImageSpec", "image_ref") == 20
    assert num("ContainerConfig", "linux") == 15
    assert num("LinuxSandboxSecurityContext", "run_as_group") == 8
    assert num("LinuxContainerSecurityContext", "run_as_group") == 12


def test_regenerating_gives_identical_files(tmp_path):
    assert importlib.util.find_spec("grpc_tools") is not None, "grpcio-tools is in the test extra: pip install -e '.[test]'"
    spec = importlib.util.spec_from_file_location("lr_proto_generate", PROTO_DIR / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    installed = importlib.metadata.version("grpcio-tools")
    if installed != gen.GRPC_TOOLS_VERSION:
        pytest.skip(f"stubs were generated with grpcio-tools {gen.GRPC_TOOLS_VERSION}, "
                    f"installed is {installed} (its version guards differ)")
    written = gen.generate(tmp_path)
    assert [p.name for p in written] == list(gen.GENERATED)
    for p in written:
        committed = PROTO_DIR / p.name
        assert p.read_bytes() == committed.read_bytes(), f"{p.name} differs: run generate.py"
