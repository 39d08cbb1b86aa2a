"""Generate the Python gRPC stubs of KEDA's ``externalscaler.proto`` with ``grpcio-tools``.

    python -m forecaster.adapters.keda.codegen            # rewrite the committed stubs next to the proto
    generate(out_dir, package=None)                       # top-level modules in out_dir (the tests' client)

``grpc_tools.protoc`` writes ``externalscaler_pb2.py`` (messages), ``externalscaler_pb2.pyi`` and
``externalscaler_pb2_grpc.py`` (client stub and servicer). protoc imports the messages module by its bare name
(``import externalscaler_pb2``); with ``package`` that import is rewritten to ``from <package> import ...`` so the
stubs work inside ``forecaster.adapters.keda``. ``tests/keda`` checks that the committed stubs are exactly what this
produces from the committed proto.

Not pure (runs protoc, writes files). Needs the ``grpcio-tools`` package (the ``test`` extra), never the image.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

PROTO = "externalscaler.proto"
PACKAGE = "forecaster.adapters.keda"
OUTPUTS = ("externalscaler_pb2.py", "externalscaler_pb2.pyi", "externalscaler_pb2_grpc.py")


def proto_dir() -> Path:
    """The folder holding ``externalscaler.proto`` (inside the installed package)."""
    return Path(str(resources.files(PACKAGE)))


def generate(out_dir: Path, package: str | None = None) -> list[Path]:
    """Run protoc on the proto into ``out_dir``; returns the files written (``OUTPUTS``)."""
    from grpc_tools import protoc  # a build-time tool: imported only when generating

    out_dir.mkdir(parents=True, exist_ok=True)
    include = Path(str(resources.files("grpc_tools") / "_proto"))
    args = ["protoc", f"-I{proto_dir()}", f"-I{include}", f"--python_out={out_dir}", f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}", str(proto_dir() / PROTO)]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {proto_dir() / PROTO}")
    grpc_module = out_dir / "externalscaler_pb2_grpc.py"
    if package:
        text = grpc_module.read_text(encoding="utf-8")
        text = text.replace("import externalscaler_pb2 as", f"from {package} import externalscaler_pb2 as")
        grpc_module.write_text(text, encoding="utf-8")
    return [out_dir / name for name in OUTPUTS]


def main() -> int:
    for path in generate(proto_dir(), PACKAGE):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
