"""The committed CRI stubs (collectors/proto) are what generate.py produces from api.proto,
they import as collectors.proto.*, and they carry upstream runtime.v1's wire names."""

from __future__ import annotations

import importlib.metadata
import importlib.util

import pytest
from pathlib import Path

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
    """The committed stubs are what generate.py writes with its own grpcio-tools version:
    installed here, or (as .ci/run does) installed apart in LABREPORT_GRPC_TOOLS, a
    ``pip install --target`` directory, so the project's own newer grpcio-tools stays."""
    import os
    import subprocess
    import sys

    spec = importlib.util.spec_from_file_location("lr_proto_generate", PROTO_DIR / "generate.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    apart = os.environ.get("LABREPORT_GRPC_TOOLS")
    installed = importlib.metadata.version("grpcio-tools") if importlib.util.find_spec("grpc_tools") else None
    if installed == gen.GRPC_TOOLS_VERSION:
        written = [p.name for p in gen.generate(tmp_path)]
    elif apart:
        found = [d.name for d in Path(apart).glob("grpcio_tools-*.dist-info")]
        assert found == [f"grpcio_tools-{gen.GRPC_TOOLS_VERSION}.dist-info"], (apart, found)
        code = ("import importlib.util, sys; from pathlib import Path; "
                f"s = importlib.util.spec_from_file_location('g', {str(PROTO_DIR / 'generate.py')!r}); "
                "g = importlib.util.module_from_spec(s); s.loader.exec_module(g); "
                "print(' '.join(p.name for p in g.generate(Path(sys.argv[1]))))")
        cp = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": apart})
        assert cp.returncode == 0, cp.stderr
        written = cp.stdout.split()
    else:
        pytest.skip(f"stubs were generated with grpcio-tools {gen.GRPC_TOOLS_VERSION}, installed is {installed}: "
                    f"pip install --target DIR grpcio-tools=={gen.GRPC_TOOLS_VERSION} and set "
                    "LABREPORT_GRPC_TOOLS=DIR (.ci/run does)")
    assert written == list(gen.GENERATED)
    for name in written:
        committed = PROTO_DIR / name
        fresh = tmp_path / "collectors" / "proto" / name
        assert fresh.read_bytes() == committed.read_bytes(), f"{name} differs: run generate.py"


def test_stubs_carry_no_version_guard():
    """No guard ties the stubs to the generator's grpcio/protobuf: the widest runtime range."""
    pb2 = (PROTO_DIR / "api_pb2.py").read_text()
    grpc_stub = (PROTO_DIR / "api_pb2_grpc.py").read_text()
    assert "ValidateProtobufRuntimeVersion" not in pb2 and "import runtime_version" not in pb2
    assert "GRPC_GENERATED_VERSION" not in grpc_stub and "_registered_method" not in grpc_stub


def test_a_real_grpc_round_trip_with_the_installed_versions():
    import subprocess
    import sys

    cp = subprocess.run([sys.executable, str(ROOT / "tests" / "support" / "cri_roundtrip.py")],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0 and cp.stdout.strip().endswith(" ok"), cp.stderr
    import google.protobuf
    import grpc

    assert cp.stdout.strip() == f"grpcio {grpc.__version__} protobuf {google.protobuf.__version__} ok"


def test_pyproject_pins_are_the_tested_floor():
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "grpcio>=1.51" in deps and "protobuf>=3.20.3" in deps


def test_a_real_grpc_round_trip_with_an_older_protobuf():
    """The generator's own directory (.ci/run installs it apart) holds the protobuf of its
    time (4.25): the stubs run a real call on it too — the low end of the range."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    apart = os.environ.get("LABREPORT_GRPC_TOOLS")
    if not apart or not list(Path(apart).glob("protobuf-*.dist-info")):
        pytest.skip("no LABREPORT_GRPC_TOOLS directory with its own protobuf (.ci/run installs one)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([apart, str(ROOT)]))
    cp = subprocess.run([sys.executable, str(ROOT / "tests" / "support" / "cri_roundtrip.py")], env=env,
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    version = cp.stdout.split("protobuf ", 1)[1].split()[0]
    assert int(version.split(".")[0]) < 5 and cp.stdout.strip().endswith(" ok"), cp.stdout
