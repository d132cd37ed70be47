"""One runner per engine: float32 (N, ...) tensor in, float32 tensor out, the same function as the module.

* ``torch``: the module itself, eager; bf16 by autocast (on CPU only where oneDNN has bf16 matrix units).
* ``onnxruntime``: the ONNX export on the CPU execution provider, float32 only (its CPU provider has no bf16
  convolutions). Worker threads do not spin-wait between operators (``allow_spinning`` 0): on cores shared
  with other processes, spinning threads steal the time the busy worker needs.
* ``openvino``: the ONNX export compiled for the CPU, one stream, a static shape per batch size (compiled on
  first use of that size). Its precision is always set explicitly: on CPUs with bf16 units OpenVINO's own
  default is bf16, which would change the features without anyone asking.

ONNX Runtime and OpenVINO use ``threads`` threads (``support.engine_threads``: torch's count by default).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

PIP_NAMES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}


class TorchRunner:
    """Eager PyTorch, optionally under bf16 autocast; outputs cast back to float32.

    Threads are torch's own process-wide count (``OMP_NUM_THREADS``, ``torch.set_num_threads``)."""

    def __init__(self, core: nn.Module, precision: str, threads: int) -> None:
        self.core, self.precision = core, precision

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device.type
        cast = (torch.autocast(device, dtype=torch.bfloat16) if self.precision == "bf16"
                else contextlib.nullcontext())
        with torch.no_grad(), cast:
            return self.core(x).float()


class OrtRunner:
    """ONNX Runtime, CPU execution provider, float32."""

    def __init__(self, onnx_path: Path, precision: str, threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        arr = np.ascontiguousarray(x.detach().cpu().float().numpy())  # (N, ...) C order
        return torch.from_numpy(self.session.run(None, {"x": arr})[0])


class OpenVinoRunner:
    """OpenVINO on the CPU: f32 or bf16 inference precision, one stream, ``threads`` threads, no pinning."""

    def __init__(self, onnx_path: Path, precision: str, threads: int) -> None:
        import openvino as ov

        self.core = ov.Core()
        self.model = self.core.read_model(str(onnx_path))
        self.config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
                       "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
                       "ENABLE_CPU_PINNING": False}
        self.compiled: dict[tuple[int, ...], object] = {}  # input shape -> compiled model

    def _compiled(self, shape: tuple[int, ...]):  # noqa: ANN202
        if shape not in self.compiled:
            model = self.model.clone()
            model.reshape({0: list(shape)})
            self.compiled[shape] = self.core.compile_model(model, "CPU", self.config)
        return self.compiled[shape]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        arr = np.ascontiguousarray(x.detach().cpu().float().numpy())  # (N, ...) C order
        return torch.from_numpy(np.array(self._compiled(arr.shape)(arr)[0]))


RUNNERS = {"torch": TorchRunner, "onnxruntime": OrtRunner, "openvino": OpenVinoRunner}
