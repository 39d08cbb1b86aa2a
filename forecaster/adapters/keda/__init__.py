"""KEDA external scaler adapter: KEDA's ``externalscaler.proto``, its Python stubs, and the gRPC server.

- ``externalscaler.proto``: KEDA's wire contract, shipped in the package (package data);
- ``externalscaler_pb2.py`` / ``.pyi`` / ``externalscaler_pb2_grpc.py``: generated from it by ``grpcio-tools``
  (``python -m forecaster.adapters.keda.codegen``) and **committed**. Why committed rather than generated at build
  or import time: the image and every install then need only ``grpcio`` and ``protobuf`` at run time, not
  ``grpcio-tools`` (protoc plus setuptools) in the image, no code generation step in ``pip install``, and no write
  into site-packages at import (the root file system is read-only in the Deployment). The cost, stubs drifting from
  the proto or from the pinned ``grpcio``/``protobuf``, is checked by ``tests/keda``: it regenerates them with the
  pinned ``grpcio-tools`` and compares, and its client is built from the proto at test time, not from these stubs.
  The stubs require ``grpcio`` at least the generating ``grpcio-tools`` version and ``protobuf`` 7.35.1 or newer
  (both checked at import by the generated code; pinned in ``pyproject.toml``).
- ``server.py``: ``KedaScalerServer``, the servicer over a floor source (no policy here: what to serve is
  ``forecaster.runtime.controller.keda``).

Not pure (gRPC). Wired by ``forecaster keda-scaler`` (``forecaster.cli.keda``).
"""
