"""Conv microbenchmark: ferry's float32 Conv kernel against onnxruntime, shape by shape.

Run by hand (never from tests), with the OpenBLAS overrides removed as bench/run.sh does:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/conv_micro.py \
        [--batch 1 8] [--runs 10] [--only sr] [--algorithms]

Every shape is timed as the minimum over ``--runs`` rounds; each round calls ferry (weights
packed once beforehand, as a session does) and a one-node onnxruntime Conv model of the same
shape (2 intra-op threads), the starting engine alternating. Both run with 2 BLAS/ORT threads.
``--algorithms`` also times every algorithm ferry could force for the shape.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._timing import Engine, round_robin, wait_for_quiet, warm_up  # noqa: E402


@dataclass(frozen=True)
class Shape:
    """One Conv: input channels/size, output channels, square kernel, stride, pad."""

    label: str
    c: int
    m: int
    size: int
    k: int
    stride: int = 1

    @property
    def pad(self) -> int:
        return self.k // 2


SHAPES = [
    Shape("sr 1->64 5x5", 1, 64, 224, 5),
    Shape("sr 64->64 3x3", 64, 64, 224, 3),
    Shape("sr 64->32 3x3", 64, 32, 224, 3),
    Shape("sr 32->9 3x3", 32, 9, 224, 3),
    Shape("rn stem 7x7 s2", 3, 64, 224, 7, 2),
    Shape("rn 64->64 3x3 @56", 64, 64, 56, 3),
    Shape("rn 128->128 3x3 @28", 128, 128, 28, 3),
    Shape("rn 128->128 3x3 s2 @56", 128, 128, 56, 3, 2),
    Shape("rn 256->256 3x3 @14", 256, 256, 14, 3),
    Shape("rn 256->256 3x3 s2 @28", 256, 256, 28, 3, 2),
    Shape("rn 512->512 3x3 @7", 512, 512, 7, 3),
    Shape("rn 512->512 3x3 s2 @14", 512, 512, 14, 3, 2),
    Shape("rn 64->64 1x1 @56", 64, 64, 56, 1),
    Shape("rn 64->256 1x1 @56", 64, 256, 56, 1),
    Shape("rn 256->64 1x1 @56", 256, 64, 56, 1),
    Shape("rn 256->128 1x1 @56", 256, 128, 56, 1),
    Shape("rn 256->512 1x1 s2 @56", 256, 512, 56, 1, 2),
    Shape("rn 128->512 1x1 @28", 128, 512, 28, 1),
    Shape("rn 512->128 1x1 @28", 512, 128, 28, 1),
    Shape("rn 512->1024 1x1 s2 @28", 512, 1024, 28, 1, 2),
    Shape("rn 256->1024 1x1 @14", 256, 1024, 14, 1),
    Shape("rn 1024->256 1x1 @14", 1024, 256, 14, 1),
    Shape("rn 1024->2048 1x1 s2 @14", 1024, 2048, 14, 1, 2),
    Shape("rn 512->2048 1x1 @7", 512, 2048, 7, 1),
    Shape("rn 2048->512 1x1 @7", 2048, 512, 7, 1),
]


def _attrs(shape: Shape) -> dict:
    return {"strides": [shape.stride] * 2, "pads": [shape.pad] * 4, "dilations": [1, 1],
            "group": 1, "kernel_shape": [shape.k] * 2, "auto_pad": "NOTSET"}


def _ort_session(shape: Shape, batch: int):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    attrs = {k: v for k, v in _attrs(shape).items() if k != "auto_pad"}
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, shape.c, shape.size,
                                                               shape.size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    rng = np.random.default_rng(1)
    w = rng.standard_normal((shape.m, shape.c, shape.k, shape.k)).astype(np.float32)
    b = rng.standard_normal(shape.m).astype(np.float32)
    graph = helper.make_graph([node], "conv", [x], [y], [
        onnx.numpy_helper.from_array(w, "w"), onnx.numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session, w, b


def _engines(shape: Shape, batch: int, algorithms: bool) -> list[Engine]:
    from ferry.runtime.kernels import conv_algorithms as ca

    session, w, b = _ort_session(shape, batch)
    x = np.random.default_rng(2).standard_normal((batch, shape.c, shape.size, shape.size),
                                                 dtype=np.float32)
    attrs = _attrs(shape)
    geometry = {k: attrs[k] for k in ("strides", "pads", "dilations", "group", "auto_pad")}
    packed = ca.pack_conv_weights(w, **geometry)
    engines = [Engine("ferry", lambda: ca.conv_packed(x, packed, bias=b)),
               Engine("ort", lambda: session.run(None, {"x": x})[0])]
    if algorithms:
        for name in ca.applicable_algorithms(x.shape, packed):
            forced = ca.pack_conv_weights(w, **geometry, algorithm=name)
            engines.append(Engine(name, lambda f=forced: ca.conv_packed(x, f, bias=b)))
    return engines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--only", default="", help="substring of the shape labels to run")
    parser.add_argument("--algorithms", action="store_true", help="also time forced algorithms")
    parser.add_argument("--quiet-wait", type=float, default=60.0,
                        help="seconds to wait per shape for other processes to go quiet")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(2):
        print(f"{'shape':28s} {'N':>2s} {'ferry ms':>9s} {'ort ms':>8s} {'ratio':>6s}  others")
        for batch in args.batch:
            for shape in SHAPES:
                if args.only not in shape.label:
                    continue
                quiet = wait_for_quiet(0.3, args.quiet_wait)
                engines = _engines(shape, batch, args.algorithms)
                ref = engines[1].call()
                got = engines[0].call()
                err = float(np.abs(got - ref).max() / (np.abs(ref).max() or 1.0))
                warm_up(engines, 2)
                round_robin(engines, args.runs, args.runs, 1e9, gap=0.005)
                best = {e.label: (min(e.times) * 1e3 if e.times else float("nan"))
                        for e in engines}
                others = " ".join(f"{k}={v:.2f}" for k, v in list(best.items())[2:])
                print(f"{shape.label:28s} {batch:2d} {best['ferry']:9.2f} {best['ort']:8.2f} "
                      f"{best['ferry'] / best['ort']:6.2f}  err={err:.1e} {others} "
                      f"(busy {quiet['other_cores']:.1f})", flush=True)


if __name__ == "__main__":
    main()
