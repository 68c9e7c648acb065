"""Regenerate the CRI runtime.v1 Python stubs from collectors/proto/api.proto.

    python collectors/proto/generate.py            # rewrite the stubs in place
    python collectors/proto/generate.py --out DIR  # write them under DIR/collectors/proto/

Needs grpcio-tools (a test dependency); the committed stubs need only grpcio + protobuf at
run time. The options are fixed so the output is reproducible: protoc is run from the
repository root with ``-I <root>`` and the path ``collectors/proto/api.proto``, so the
generated files import each other as ``collectors.proto.api_pb2`` (never as a bare
top-level ``api_pb2``); the one import line grpc_tools writes is checked and rewritten to
that absolute form if a grpc_tools version ever emits it differently.
tests/test_proto_stubs.py regenerates into a temp dir and compares byte for byte.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO_REL = "collectors/proto/api.proto"
GENERATED = ("api_pb2.py", "api_pb2.pyi", "api_pb2_grpc.py")
# The grpcio-tools version the committed stubs were generated with: the last one whose
# output carries no version guards (from 1.63 the gRPC stubs refuse a grpcio older than the
# generator, and protobuf 5.26+'s gencode a runtime older than itself), so the stubs run
# with the widest range tested: grpcio 1.51.3 … 1.85.3 and protobuf 3.20.3 … 7.36.2
# (tests/support/cri_roundtrip.py under each; pyproject's pins follow). To regenerate:
#   pip install --target /tmp/gt grpcio-tools==1.62.3 && PYTHONPATH=/tmp/gt python3 collectors/proto/generate.py
# Other versions write different files, so the byte-for-byte test skips for them.
GRPC_TOOLS_VERSION = "1.62.3"

_BARE_IMPORT = re.compile(r"^import api_pb2 as (\w+)$", re.M)


def _fix_imports(text: str) -> str:
    return _BARE_IMPORT.sub(r"from collectors.proto import api_pb2 as \1", text)


def generate(out_root: Path) -> list[Path]:
    """Run protoc for api.proto, writing DIR/collectors/proto/api_pb2*.py; return the paths."""
    from grpc_tools import protoc  # imported here: only the generator needs grpcio-tools
    import grpc_tools

    include = Path(grpc_tools.__file__).resolve().parent / "_proto"
    with tempfile.TemporaryDirectory(prefix="lr-protoc-") as tmp:
        args = [
            "grpc_tools.protoc",
            f"-I{ROOT}",
            f"-I{include}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            PROTO_REL,
        ]
        code = protoc.main(args)
        if code != 0:
            raise SystemExit(f"protoc failed with exit code {code}: {' '.join(args)}")
        written = []
        dest = out_root / "collectors" / "proto"
        dest.mkdir(parents=True, exist_ok=True)
        for name in GENERATED:
            text = (Path(tmp) / "collectors" / "proto" / name).read_text()
            target = dest / name
            target.write_text(_fix_imports(text))
            written.append(target)
        return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT, help="root to write collectors/proto/ under")
    ns = ap.parse_args(argv)
    for p in generate(ns.out):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
