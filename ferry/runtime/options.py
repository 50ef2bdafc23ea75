"""Session options, shaped after onnxruntime's ``SessionOptions``."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["GraphOptimizationLevel", "SessionOptions"]


class GraphOptimizationLevel(enum.IntEnum):
    """How much the session rewrites the graph before running it (onnxruntime's values)."""

    ORT_DISABLE_ALL = 0
    ORT_ENABLE_BASIC = 1
    ORT_ENABLE_EXTENDED = 2
    ORT_ENABLE_ALL = 99


@dataclass
class SessionOptions:
    """``graph_optimization_level``: any level above ``ORT_DISABLE_ALL`` runs ferry's
    verified passes (:func:`ferry.optimize`) on the session's copy of the model.
    ``intra_op_num_threads``: BLAS and native-kernel threads while running (0: BLAS's
    default, and every CPU the process may use for native kernels; a nonzero value needs
    the ``threadpoolctl`` package). ``use_native_kernels``: run convolutions on ferry's
    compiled kernels where they are built (:mod:`ferry.runtime.kernels.native_conv`);
    False keeps to numpy. ``enable_profiling``: time every node; ``end_profiling``
    writes a Chrome trace named ``<profile_file_prefix>_<timestamp>.json``.
    ``enable_cpu_mem_arena``: keep freed activation memory in the process for the next run
    (:mod:`ferry.runtime.arena`; process-wide, like onnxruntime's arena)."""

    graph_optimization_level: GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL
    intra_op_num_threads: int = 0
    enable_profiling: bool = False
    profile_file_prefix: str = "ferry_profile"
    enable_cpu_mem_arena: bool = True
    use_native_kernels: bool = True
