"""Shape rules of the neural-network families (conv/pool/norm, linalg, reduce, rnn,
attention, resize, quantize, activations).

Each case is one node with symbolic input dims. Its expected output types are written
from the ONNX shape equations; the same node with the symbols bound to small sizes is
then inferred again and run through ferry's runtime on random data, and the runtime's
output shapes and element types must equal both the concrete inference and the
symbolic expectation evaluated at those sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
import onnx.helper
import pytest

import ferry
from ferry.ir import DataType, TensorType
from ferry.shapes import infer, infer_shapes
from ferry.shapes.expr import Expr


@dataclass(frozen=True)
class In:
    """A graph input; ``high`` bounds random integer data to [0, high)."""

    name: str
    dtype: str
    shape: list
    high: int | None = None


@dataclass(frozen=True)
class Const:
    """An initializer."""

    name: str
    data: np.ndarray


@dataclass
class Case:
    id: str
    op: str
    inputs: list  # In | Const | None (an omitted optional input)
    expected: list[str]  # str() of each output's inferred type
    bind: dict[str, int] = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)
    opset: int = 22
    domain: str = ""
    run: bool = True  # also run it through the runtime at the bound sizes


def f32(*values):
    return np.array(values, dtype=np.float32)


def i64(*values):
    return np.array(values, dtype=np.int64)


X4 = In("x", "float", ["N", "C", "H", "W"])
BIND4 = {"N": 2, "C": 3, "H": 7, "W": 6}

CASES = [
    # -- convolution ----------------------------------------------------------------------
    Case("conv_strided_padded", "Conv", [In("x", "float", ["N", 3, "H", "W"]),
                                         In("w", "float", [16, 3, 3, 3])],
         ["float[N,16,(H-1)//2+1,(W-1)//2+1]"], {"N": 2, "H": 9, "W": 8},
         {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    Case("conv_same_upper", "Conv", [In("x", "float", ["N", 3, "H", "W"]),
                                     In("w", "float", [8, 3, 3, 3])],
         ["float[N,8,(H+1)//2,(W+1)//2]"], {"N": 1, "H": 7, "W": 6},
         {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    Case("conv_grouped_dilated_valid", "Conv", [In("x", "float", ["N", 4, "H", "W"]),
                                                In("w", "float", [8, 2, 3, 3])],
         ["float[N,8,H-4,W-4]"], {"N": 1, "H": 9, "W": 10},
         {"group": 2, "dilations": [2, 2], "auto_pad": "VALID"}),
    Case("conv_1d_asymmetric_pads", "Conv", [In("x", "float", ["N", 2, "L"]),
                                             In("w", "float", [4, 2, 5])],
         ["float[N,4,(L-2)//3+1]"], {"N": 2, "L": 11}, {"strides": [3], "pads": [2, 1]}),
    Case("conv_transpose_stride2", "ConvTranspose", [In("x", "float", ["N", 4, "H", "W"]),
                                                     In("w", "float", [4, 3, 3, 3])],
         ["float[N,6,H*2,W*2]"], {"N": 1, "H": 4, "W": 5},
         {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1], "group": 2}),
    Case("conv_transpose_output_shape", "ConvTranspose", [In("x", "float", ["N", 2, "H", "W"]),
                                                          In("w", "float", [2, 3, 3, 3])],
         ["float[N,3,10,8]"], {"N": 1, "H": 5, "W": 4},
         {"strides": [2, 2], "output_shape": [10, 8]}),
    Case("conv_transpose_same_lower", "ConvTranspose", [In("x", "float", ["N", 2, "L"]),
                                                        In("w", "float", [2, 1, 4])],
         ["float[N,1,L*3]"], {"N": 2, "L": 5}, {"strides": [3], "auto_pad": "SAME_LOWER"}),
    Case("conv_integer", "ConvInteger", [In("x", "uint8", ["N", 2, "H", "W"], 255),
                                         In("w", "uint8", [4, 2, 2, 2], 255)],
         ["int32[N,4,H-1,W-1]"], {"N": 1, "H": 4, "W": 3}),
    Case("qlinear_conv", "QLinearConv", [
        In("x", "uint8", ["N", 2, "H", "W"], 255), Const("xs", f32(0.1)),
        Const("xz", np.array(3, np.uint8)), In("w", "uint8", [4, 2, 3, 3], 255),
        Const("ws", f32(0.2)), Const("wz", np.array(1, np.uint8)), Const("ys", f32(0.5)),
        Const("yz", np.array(2, np.uint8))],
        ["uint8[N,4,H,W]"], {"N": 1, "H": 5, "W": 4}, {"pads": [1, 1, 1, 1]}),
    Case("deform_conv", "DeformConv", [In("x", "float", ["N", 2, "H", "W"]),
                                       In("w", "float", [4, 2, 2, 2]),
                                       In("offset", "float", ["N", 8, "H-1", "W-1"])],
         ["float[N,4,H-1,W-1]"], {"N": 1, "H": 4, "W": 5}),
    Case("causal_conv_with_state", "CausalConvWithState",
         [In("x", "float", ["B", 4, "L"]), In("w", "float", [4, 1, 3])],
         ["float[B,4,L]", "float[B,4,2]"], {"B": 2, "L": 6}, opset=27),
    # -- pooling --------------------------------------------------------------------------
    Case("max_pool_ceil_mode_indices", "MaxPool", [X4],
         ["float[N,C,(H-1)//2+1,(W-1)//2+1]", "int64[N,C,(H-1)//2+1,(W-1)//2+1]"], BIND4,
         {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}),
    Case("max_pool_ceil_mode_last_window_in_pad", "MaxPool", [X4],
         ["float[N,C,min((H+1)//2+1,(H+2)//2),min((W+1)//2+1,(W+2)//2)]"],
         {"N": 1, "C": 2, "H": 5, "W": 6},
         {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}),
    Case("max_pool_dilated", "MaxPool", [In("x", "float", ["N", "C", "L"])],
         ["float[N,C,L-4]"], {"N": 1, "C": 2, "L": 9}, {"kernel_shape": [3], "dilations": [2]}),
    Case("average_pool_same_lower", "AveragePool", [X4], ["float[N,C,(H+1)//2,(W+1)//2]"],
         BIND4, {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    Case("lp_pool", "LpPool", [X4], ["float[N,C,H-1,W-2]"], BIND4, {"kernel_shape": [2, 3]}),
    Case("global_average_pool", "GlobalAveragePool", [X4], ["float[N,C,1,1]"], BIND4),
    Case("global_max_pool_1d", "GlobalMaxPool", [In("x", "float", ["N", "C", "L"])],
         ["float[N,C,1]"], {"N": 2, "C": 3, "L": 4}),
    Case("max_roi_pool", "MaxRoiPool", [X4, In("rois", "float", ["R", 5])],
         ["float[R,C,2,3]"], {**BIND4, "R": 3}, {"pooled_shape": [2, 3]}),
    Case("max_unpool", "MaxUnpool", [X4, In("i", "int64", ["N", "C", "H", "W"], 1)],
         ["float[N,C,H*2,W*2]"], BIND4, {"kernel_shape": [2, 2], "strides": [2, 2]}),
    Case("max_unpool_output_shape", "MaxUnpool", [X4, In("i", "int64", ["N", "C", "H", "W"], 1),
                                                  Const("shape", i64(2, 3, 15, 13))],
         ["float[2,3,15,13]"], BIND4, {"kernel_shape": [2, 2], "strides": [2, 2]}),
    # -- normalization ----------------------------------------------------------------------
    Case("batch_norm_training", "BatchNormalization",
         [In("x", "float", ["N", 3, "H", "W"])] + [In(n, "float", [3]) for n in "sbmv"],
         ["float[N,3,H,W]", "float[3]", "float[3]"], {"N": 2, "H": 3, "W": 2},
         {"training_mode": 1}, opset=15),
    Case("batch_norm_opset9_statistics", "BatchNormalization",
         [In("x", "float", ["N", 3, "L"])] + [In(n, "float", [3]) for n in "sbmv"],
         ["float[N,3,L]"] + ["float[3]"] * 4, {"N": 2, "L": 3}, opset=9),
    Case("layer_norm_statistics", "LayerNormalization",
         [In("x", "float16", ["B", "S", 4]), In("scale", "float16", ["S", 4])],
         ["float16[B,S,4]", "float[B,1,1]", "float[B,1,1]"], {"B": 2, "S": 3}, {"axis": -2},
         opset=17),
    Case("group_norm", "GroupNormalization",
         [In("x", "float", ["N", 4, "H"]), In("s", "float", [4]), In("b", "float", [4])],
         ["float[N,4,H]"], {"N": 2, "H": 3}, {"num_groups": 2}, opset=21),
    Case("instance_norm", "InstanceNormalization",
         [In("x", "float", ["N", 3, "L"]), In("s", "float", [3]), In("b", "float", [3])],
         ["float[N,3,L]"], {"N": 2, "L": 5}),
    Case("rms_norm", "RMSNormalization", [In("x", "float", ["B", "S", 8]),
                                          In("scale", "float", [8])],
         ["float[B,S,8]"], {"B": 2, "S": 3}, opset=23),
    Case("lrn", "LRN", [X4], ["float[N,C,H,W]"], BIND4, {"size": 3}),
    Case("lp_normalization", "LpNormalization", [X4], ["float[N,C,H,W]"], BIND4, {"axis": 1}),
    Case("mean_variance_normalization", "MeanVarianceNormalization", [X4],
         ["float[N,C,H,W]"], BIND4),
    Case("dropout_mask_bool", "Dropout", [X4, Const("ratio", f32(0.5).reshape(())),
                                          Const("training", np.array(True))],
         ["float[N,C,H,W]", "bool[N,C,H,W]"], BIND4, {"seed": 0}),
    Case("dropout_opset7_mask", "Dropout", [X4], ["float[N,C,H,W]", "float[N,C,H,W]"], BIND4,
         opset=7),
    # -- linear algebra ---------------------------------------------------------------------
    Case("matmul_batched", "MatMul", [In("a", "float", ["B", "S", "K"]),
                                      In("b", "float", ["K", "M"])],
         ["float[B,S,M]"], {"B": 2, "S": 3, "K": 4, "M": 5}),
    Case("matmul_vector_left", "MatMul", [In("a", "float", ["K"]),
                                          In("b", "float", ["B", "K", "M"])],
         ["float[B,M]"], {"B": 2, "K": 4, "M": 5}),
    Case("matmul_vector_right", "MatMul", [In("a", "float", ["B", "S", "K"]),
                                           In("b", "float", ["K"])],
         ["float[B,S]"], {"B": 2, "S": 3, "K": 4}),
    Case("matmul_broadcast_batch", "MatMul", [In("a", "float", ["B", 1, "S", "K"]),
                                              In("b", "float", ["H", "K", "M"])],
         ["float[B,H,S,M]"], {"B": 2, "H": 3, "S": 2, "K": 4, "M": 5}),
    Case("matmul_integer", "MatMulInteger", [In("a", "uint8", ["M", "K"], 255),
                                             In("b", "uint8", ["K", "N"], 255)],
         ["int32[M,N]"], {"M": 2, "K": 3, "N": 4}),
    Case("qlinear_matmul", "QLinearMatMul", [
        In("a", "int8", ["M", "K"], 100), Const("as", f32(0.1)), Const("az", np.array(0, np.int8)),
        In("b", "int8", ["K", "N"], 100), Const("bs", f32(0.1)), Const("bz", np.array(0, np.int8)),
        Const("ys", f32(0.3)), Const("yz", np.array(1, np.int8))],
        ["int8[M,N]"], {"M": 2, "K": 3, "N": 4}),
    Case("gemm_transposed", "Gemm", [In("a", "float", ["K", "M"]), In("b", "float", ["N", "K"]),
                                     In("c", "float", ["N"])],
         ["float[M,N]"], {"M": 2, "K": 3, "N": 4}, {"transA": 1, "transB": 1}),
    Case("einsum_batched_matmul", "Einsum", [In("a", "float", ["B", "I", "J"]),
                                             In("b", "float", ["B", "J", "K"])],
         ["float[B,I,K]"], {"B": 2, "I": 3, "J": 4, "K": 5}, {"equation": "bij,bjk->bik"},
         opset=12),
    Case("einsum_implicit", "Einsum", [In("a", "float", ["J", "I"]), In("b", "float", ["I", "K"])],
         ["float[J,K]"], {"I": 3, "J": 4, "K": 5}, {"equation": "ji,ik"}),
    Case("einsum_ellipsis", "Einsum", [In("a", "float", ["B", 1, "I", "J"]),
                                       In("b", "float", ["T", "J", "K"])],
         ["float[B,T,I,K]"], {"B": 2, "T": 3, "I": 2, "J": 4, "K": 5},
         {"equation": "...ij,...jk->...ik"}),
    Case("einsum_diagonal_sum", "Einsum", [In("a", "float", ["N", "N", "M"])],
         ["float[M,N]"], {"N": 3, "M": 2}, {"equation": "iij->ji"}),
    Case("det", "Det", [In("x", "float", ["B", "M", "M"])], ["float[B]"], {"B": 2, "M": 3}),
    # -- reductions -------------------------------------------------------------------------
    Case("reduce_sum_axes_input", "ReduceSum", [In("x", "float", ["B", "S", "D"]),
                                                Const("axes", i64(1))],
         ["float[B,D]"], {"B": 2, "S": 3, "D": 4}, {"keepdims": 0}, opset=13),
    Case("reduce_mean_axes_attribute", "ReduceMean", [In("x", "float", ["B", "S", "D"])],
         ["float[B,S,1]"], {"B": 2, "S": 3, "D": 4}, {"axes": [-1]}, opset=17),
    Case("reduce_max_noop", "ReduceMax", [In("x", "float", ["B", "S"])], ["float[B,S]"],
         {"B": 2, "S": 3}, {"noop_with_empty_axes": 1}, opset=20),
    Case("reduce_l2_all_axes", "ReduceL2", [In("x", "float", ["B", "S", "D"])],
         ["float[1,1,1]"], {"B": 2, "S": 3, "D": 4}, opset=18),
    Case("reduce_log_sum_exp_all_squeezed", "ReduceLogSumExp", [In("x", "double", ["B", "S"])],
         ["double[]"], {"B": 2, "S": 3}, {"keepdims": 0}, opset=11),
    Case("argmax_last_index", "ArgMax", [In("x", "float", ["B", "S", "D"])],
         ["int64[B,D]"], {"B": 2, "S": 3, "D": 4},
         {"axis": -2, "keepdims": 0, "select_last_index": 1}),
    Case("argmin_keepdims", "ArgMin", [In("x", "int32", ["B", "S"], 9)], ["int64[1,S]"],
         {"B": 2, "S": 3}),
    Case("cumsum", "CumSum", [In("x", "float", ["B", "S"]), Const("axis", i64(1).reshape(()))],
         ["float[B,S]"], {"B": 2, "S": 3}, {"reverse": 1}),
    Case("cumprod", "CumProd", [In("x", "int64", ["B", "S"], 4),
                                Const("axis", np.array(0, np.int32))],
         ["int64[B,S]"], {"B": 2, "S": 3}, opset=26),
    Case("nll_loss_none", "NegativeLogLikelihoodLoss",
         [In("x", "float", ["N", 5, "D"]), In("t", "int64", ["N", "D"], 5)],
         ["float[N,D]"], {"N": 2, "D": 3}, {"reduction": "none"}),
    Case("nll_loss_mean_weight", "NegativeLogLikelihoodLoss",
         [In("x", "float", ["N", 5]), In("t", "int64", ["N"], 5), In("w", "float", [5])],
         ["float[]"], {"N": 2}),
    Case("softmax_cross_entropy", "SoftmaxCrossEntropyLoss",
         [In("x", "float", ["N", 4, "D"]), In("t", "int32", ["N", "D"], 4)],
         ["float[]", "float[N,4,D]"], {"N": 2, "D": 3}, {"reduction": "sum"}, opset=13),
    # -- activations ------------------------------------------------------------------------
    Case("relu", "Relu", [X4], ["float[N,C,H,W]"], BIND4),
    Case("gelu_tanh", "Gelu", [X4], ["float[N,C,H,W]"], BIND4, {"approximate": "tanh"},
         opset=20),
    Case("clip_bounds", "Clip", [X4, Const("lo", f32(0).reshape(())),
                                 Const("hi", f32(1).reshape(()))],
         ["float[N,C,H,W]"], BIND4, opset=13),
    Case("prelu_channel_slope", "PRelu", [X4, In("slope", "float", ["C", 1, 1])],
         ["float[N,C,H,W]"], BIND4),
    Case("shrink", "Shrink", [In("x", "float", ["N"])], ["float[N]"], {"N": 5}),
    Case("hard_swish", "HardSwish", [X4], ["float[N,C,H,W]"], BIND4),
    Case("swish", "Swish", [X4], ["float[N,C,H,W]"], BIND4, opset=24),
    Case("swiglu", "SwiGLU", [In("a", "float", ["B", "D"]), In("b", "float", ["B", "D"])],
         ["float[B,D]"], {"B": 2, "D": 3}, opset=28),
    Case("softmax_legacy_axis", "Softmax", [X4], ["float[N,C,H,W]"], BIND4, {"axis": 2},
         opset=11),
    Case("log_softmax", "LogSoftmax", [X4], ["float[N,C,H,W]"], BIND4, {"axis": -1}),
    Case("hardmax", "Hardmax", [X4], ["float[N,C,H,W]"], BIND4),
    # -- recurrent --------------------------------------------------------------------------
    Case("lstm_bidirectional", "LSTM",
         [In("x", "float", ["S", "B", 3]), In("w", "float", [2, 20, 3]),
          In("r", "float", [2, 20, 5])],
         ["float[S,2,B,5]", "float[2,B,5]", "float[2,B,5]"], {"S": 4, "B": 2},
         {"hidden_size": 5, "direction": "bidirectional"}),
    Case("gru_batch_first", "GRU",
         [In("x", "float", ["B", "S", 3]), In("w", "float", [1, 15, 3]),
          In("r", "float", [1, 15, 5])],
         ["float[B,S,1,5]", "float[B,1,5]"], {"S": 4, "B": 2}, {"hidden_size": 5, "layout": 1}),
    Case("rnn_hidden_from_r", "RNN",
         [In("x", "float", ["S", "B", 3]), In("w", "float", [1, 6, 3]),
          In("r", "float", [1, 6, 6])],
         ["float[S,1,B,6]", "float[1,B,6]"], {"S": 3, "B": 2}, opset=14),
    # -- attention --------------------------------------------------------------------------
    Case("attention_4d_gqa_past", "Attention",
         [In("q", "float", ["B", 4, "S", 8]), In("k", "float", ["B", 2, "T", 8]),
          In("v", "float", ["B", 2, "T", 6]), None, In("pk", "float", ["B", 2, "P", 8]),
          In("pv", "float", ["B", 2, "P", 6])],
         ["float[B,4,S,6]", "float[B,2,P+T,8]", "float[B,2,P+T,6]", "float[B,4,S,P+T]"],
         {"B": 2, "S": 3, "T": 3, "P": 2}, opset=23),
    Case("attention_3d", "Attention",
         [In("q", "float", ["B", "S", 32]), In("k", "float", ["B", "T", 16]),
          In("v", "float", ["B", "T", 24])],
         ["float[B,S,48]", "float[B,2,T,8]", "float[B,2,T,12]"],
         {"B": 2, "S": 3, "T": 4}, {"q_num_heads": 4, "kv_num_heads": 2}, opset=24),
    Case("rotary_embedding", "RotaryEmbedding",
         [In("x", "float", ["B", "S", 16]), In("cos", "float", [10, 4]),
          In("sin", "float", [10, 4]), In("pos", "int64", ["B", "S"], 10)],
         ["float[B,S,16]"], {"B": 2, "S": 3}, {"num_heads": 2}, opset=23),
    Case("linear_attention", "LinearAttention",
         [In("q", "float", ["B", "T", 16]), In("k", "float", ["B", "T", 8]),
          In("v", "float", ["B", "T", 6])],
         ["float[B,T,12]", "float[B,2,4,3]"], {"B": 2, "T": 3},
         {"q_num_heads": 4, "kv_num_heads": 2, "update_rule": "linear"}, opset=27),
    Case("flex_attention", "FlexAttention",
         [In("q", "float", ["B", 4, "S", 8]), In("k", "float", ["B", 2, "T", 8]),
          In("v", "float", ["B", 2, "T", 6])],
         ["float[B,4,S,6]"], {"B": 2, "S": 3, "T": 5}, opset=1, domain="ai.onnx.preview"),
    # -- resize -----------------------------------------------------------------------------
    Case("resize_scales", "Resize", [X4, None, Const("scales", f32(1, 1, 2, 0.5))],
         ["float[N,C,H*2,W//2]"], BIND4, {"mode": "nearest"}, opset=19),
    Case("resize_scales_fraction", "Resize", [X4, None, Const("scales", f32(1.5, 0.75)),],
         ["float[N,C,(H*3)//2,(W*3)//4]"], BIND4, {"axes": [2, 3], "mode": "linear"}, opset=18),
    Case("resize_sizes_axes", "Resize", [X4, None, None, Const("sizes", i64(9, 4))],
         ["float[N,C,9,4]"], BIND4, {"axes": [-2, -1]}, opset=18),
    Case("resize_not_larger", "Resize", [In("x", "float", [1, 3, 4, 6]), None, None,
                                         Const("sizes", i64(8, 8))],
         ["float[1,3,5,8]"], {}, {"axes": [2, 3], "keep_aspect_ratio_policy": "not_larger"},
         opset=18),
    Case("resize_10", "Resize", [X4, Const("scales", f32(1, 1, 3, 2))], ["float[N,C,H*3,W*2]"],
         BIND4, opset=10),
    Case("upsample_attribute", "Upsample", [X4], ["float[N,C,H*2,W*2]"], BIND4,
         {"scales": [1.0, 1.0, 2.0, 2.0]}, opset=7),
    Case("upsample_input", "Upsample", [X4, Const("scales", f32(1, 1, 2, 3))],
         ["float[N,C,H*2,W*3]"], BIND4, opset=9),
    # -- quantization -----------------------------------------------------------------------
    Case("quantize_zero_point_type", "QuantizeLinear",
         [In("x", "float", ["N", "C"]), Const("s", f32(0.1)), Const("z", np.array(0, np.int8))],
         ["int8[N,C]"], {"N": 2, "C": 3}, opset=13),
    Case("quantize_default_uint8", "QuantizeLinear", [In("x", "float", ["N", "C"]),
                                                      Const("s", f32(0.1))],
         ["uint8[N,C]"], {"N": 2, "C": 3}),
    Case("quantize_output_dtype", "QuantizeLinear", [In("x", "float", ["N", "C"]),
                                                     Const("s", f32(0.1))],
         ["int16[N,C]"], {"N": 2, "C": 3}, {"output_dtype": int(DataType.INT16)}, opset=21),
    Case("quantize_per_axis", "QuantizeLinear",
         [In("x", "float", ["N", 3]), Const("s", f32(0.1, 0.2, 0.3)),
          Const("z", np.array([1, 2, 3], np.uint8))],
         ["uint8[N,3]"], {"N": 2}, opset=13),
    Case("dequantize_float16_scale", "DequantizeLinear",
         [In("x", "int8", ["N", "C"], 100), Const("s", np.array(0.5, np.float16))],
         ["float16[N,C]"], {"N": 2, "C": 3}, opset=19),
    Case("dequantize", "DequantizeLinear", [In("x", "uint8", ["N"], 255), Const("s", f32(0.5))],
         ["float[N]"], {"N": 4}, opset=10),
    Case("dynamic_quantize", "DynamicQuantizeLinear", [In("x", "float", ["N", "C"])],
         ["uint8[N,C]", "float[]", "uint8[]"], {"N": 2, "C": 3}),
]

def _dims(shape: list, bind: dict[str, int] | None) -> list:
    if bind is None:
        return list(shape)
    return [d if isinstance(d, int) else Expr.parse(d).substitute(bind).value for d in shape]


def build(case: Case, bind: dict[str, int] | None = None) -> ferry.Model:
    """The case's one-node model; ``bind`` replaces the symbolic input dims by sizes."""
    names, graph_inputs, initializers = [], [], []
    for spec in case.inputs:
        names.append("" if spec is None else spec.name)
        if isinstance(spec, In):
            elem = int(DataType[spec.dtype.upper()])
            graph_inputs.append(onnx.helper.make_tensor_value_info(
                spec.name, elem, _dims(spec.shape, bind)))
        elif isinstance(spec, Const):
            initializers.append(onnx.numpy_helper.from_array(spec.data, spec.name))
    outputs = [f"y{k}" for k in range(len(case.expected))]
    node = onnx.helper.make_node(case.op, names, outputs, name="n0", domain=case.domain,
                                 **case.attrs)
    graph = onnx.helper.make_graph(
        [node], "g", graph_inputs,
        [onnx.helper.make_value_info(o, onnx.TypeProto()) for o in outputs], initializers)
    opsets = {"": case.opset if not case.domain else 23}
    if case.domain:
        opsets[case.domain] = case.opset
    model = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid(d, v) for d, v in opsets.items()])
    return ferry.model_from_bytes(model.SerializeToString())


def inferred(model: ferry.Model) -> tuple[list, list[str]]:
    result = infer(model)
    errors = [str(d) for d in result.diagnostics if d.severity == "error"]
    return [v.type for v in result.model.graph.outputs], errors


def _random_feeds(case: Case, bind: dict[str, int]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feeds = {}
    for spec in case.inputs:
        if not isinstance(spec, In):
            continue
        shape = _dims(spec.shape, bind)
        dtype = DataType[spec.dtype.upper()].numpy
        if spec.high is not None:
            feeds[spec.name] = rng.integers(0, spec.high, size=shape).astype(dtype)
        else:
            feeds[spec.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_symbolic(case: Case) -> None:
    types, errors = inferred(build(case))
    assert not errors
    assert [str(t) for t in types] == case.expected


@pytest.mark.parametrize("case", [c for c in CASES if c.run], ids=[c.id for c in CASES if c.run])
def test_concrete_matches_runtime(case: Case) -> None:
    model = build(case, case.bind)
    types, errors = inferred(model)
    assert not errors
    outputs = ferry.InferenceSession(model, check=False).run(None, _random_feeds(case, case.bind))
    for index, (inferred_type, actual, expected) in enumerate(
            zip(types, outputs, case.expected, strict=True)):
        actual = np.asarray(actual)
        assert isinstance(inferred_type, TensorType)
        assert list(inferred_type.shape) == list(actual.shape), f"output {index}"
        assert inferred_type.dtype.numpy == actual.dtype, f"output {index}"
        at_sizes = [Expr.parse(d).substitute(case.bind).value for d in _expected_dims(expected)]
        assert at_sizes == list(actual.shape), f"output {index}: {expected} at {case.bind}"


def _expected_dims(text: str) -> list[str]:
    """The dims of an expected type such as ``float[N,min(H,2)]``, split at top-level commas."""
    inner = text[text.index("[") + 1:-1]
    dims, depth, start = [], 0, 0
    for position, char in enumerate(inner):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            dims.append(inner[start:position])
            start = position + 1
    return dims + [inner[start:]] if inner else []


def test_unknown_axes_input_keeps_rank() -> None:
    """ReduceSum with a non-constant axes input of length 1 and keepdims=0 drops one axis."""
    case = Case("r", "ReduceSum", [In("x", "float", ["B", "S", "D"]), In("axes", "int64", [1])],
                ["?"], attrs={"keepdims": 0}, opset=13)
    (y,), errors = inferred(build(case))
    assert not errors and y.shape is not None and len(y.shape) == 2


def test_resize_symbolic_sizes_from_shape() -> None:
    """sizes computed from Shape(x) propagate as expressions."""
    nodes = [
        onnx.helper.make_node("Shape", ["x"], ["shape"]),
        onnx.helper.make_node("Mul", ["shape", "two"], ["sizes"]),
        onnx.helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="resize"),
    ]
    graph = onnx.helper.make_graph(
        nodes, "g", [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", "L"])],
        [onnx.helper.make_value_info("y", onnx.TypeProto())],
        [onnx.numpy_helper.from_array(i64(1, 2), "two")])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 19)])
    (y,), errors = inferred(ferry.model_from_bytes(model.SerializeToString()))
    assert not errors and str(y) == "float[N,L*2]"


# -- diagnostics ------------------------------------------------------------------------------

ERROR_CASES = [
    (Case("e", "Conv", [In("x", "float", ["N", 3, "H", "W"]), In("w", "float", [8, 4, 3, 3])],
          ["?"]), "channel mismatch"),
    (Case("e", "Conv", [In("x", "float", ["N", 3]), In("w", "float", [8, 3, 3, 3])], ["?"]),
     "rank >= 3"),
    (Case("e", "Conv", [In("x", "float", [1, 1, 2, 2]), In("w", "float", [1, 1, 3, 3])], ["?"]),
     "does not fit"),
    (Case("e", "ConvTranspose", [In("x", "float", ["N", 3, "L"]), In("w", "float", [4, 2, 3])],
          ["?"]), "channel mismatch"),
    (Case("e", "MaxPool", [In("x", "float", ["N", 3, "L"])], ["?"], attrs={"kernel_shape": [2, 2]}),
     "rank 4"),
    (Case("e", "MatMul", [In("a", "float", ["B", 3]), In("b", "float", [4, "M"])], ["?"]),
     "inner dimensions"),
    (Case("e", "MatMul", [In("a", "float", [2, 3, 4]), In("b", "float", [5, 4, 6])], ["?"]),
     "broadcast"),
    (Case("e", "Gemm", [In("a", "float", [2, 3, 4]), In("b", "float", [4, 5])], ["?"]),
     "rank 2"),
    (Case("e", "Einsum", [In("a", "float", [2, 3]), In("b", "float", [4, 5])], ["?"],
          attrs={"equation": "ij,jk->ik"}), "label 'j'"),
    (Case("e", "ReduceSum", [In("x", "float", ["B", "S"]), Const("axes", i64(2))], ["?"],
          opset=13), "out of range"),
    (Case("e", "Softmax", [In("x", "float", ["B", "S"])], ["?"], attrs={"axis": 3}),
     "out of range"),
    (Case("e", "LSTM", [In("x", "float", ["S", "B", 3]), In("w", "float", [1, 20, 3]),
                        In("r", "float", [1, 20, 5])], ["?"],
          attrs={"hidden_size": 5, "direction": "bidirectional"}), "direction"),
    (Case("e", "Attention", [In("q", "float", ["B", "S", 8]), In("k", "float", ["B", "T", 8]),
                             In("v", "float", ["B", "T", 8])], ["?"], opset=23), "q_num_heads"),
    (Case("e", "BatchNormalization", [In("x", "float", ["N", 3, "L"])]
          + [In(n, "float", [4]) for n in "sbmv"], ["?"], opset=15), "one value per channel"),
    (Case("e", "NegativeLogLikelihoodLoss", [In("x", "float", ["N", 5, 2]),
                                             In("t", "int64", ["N", 3])], ["?"]),
     "does not match"),
    (Case("e", "Resize", [In("x", "float", ["N", "C"]), None, Const("scales", f32(2))], ["?"],
          opset=19), "expected 2 scales"),
    (Case("e", "PRelu", [In("x", "float", ["N", 3, "L"]), In("s", "float", [4, 1])], ["?"]),
     "does not broadcast"),
    (Case("e", "QuantizeLinear", [In("x", "float", ["N", 3]), Const("s", f32(0.1, 0.2))],
          ["?"]), "per-axis"),
]


@pytest.mark.parametrize("case,needle", ERROR_CASES,
                         ids=[f"{c.op}-{needle}" for c, needle in ERROR_CASES])
def test_errors_name_the_node(case: Case, needle: str) -> None:
    (y,), errors = inferred(build(case))
    assert len(errors) == 1, errors
    assert f"node 0 'n0' ({case.op})" in errors[0]
    assert needle in errors[0]


def test_strict_raises_on_channel_mismatch() -> None:
    case = ERROR_CASES[0][0]
    with pytest.raises(ferry.ShapeInferenceError, match="channel mismatch"):
        infer_shapes(build(case), strict=True)


def test_reduce_prod_of_shape_propagates() -> None:
    """Reshape(x, ReduceProd(Shape(x))) flattens x to the product of its dims."""
    nodes = [
        onnx.helper.make_node("Shape", ["x"], ["shape"]),
        onnx.helper.make_node("ReduceProd", ["shape"], ["count"], keepdims=1),
        onnx.helper.make_node("Reshape", ["x", "count"], ["y"]),
    ]
    graph = onnx.helper.make_graph(
        nodes, "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3, "L"])],
        [onnx.helper.make_value_info("y", onnx.TypeProto())])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)])
    (y,), errors = inferred(ferry.model_from_bytes(model.SerializeToString()))
    assert not errors and str(y) == "float[L*N*3]"


def test_group_norm_18_scale_per_group() -> None:
    """GroupNormalization-18 takes scale and bias per group, 21 per channel."""
    inputs = [In("x", "float", ["N", 4, "H"]), In("s", "float", [2]), In("b", "float", [2])]
    per_group = Case("g", "GroupNormalization", inputs, ["?"], attrs={"num_groups": 2}, opset=18)
    assert inferred(build(per_group))[1] == []
    per_channel = Case("g", "GroupNormalization", inputs, ["?"], attrs={"num_groups": 2}, opset=21)
    (errors,) = inferred(build(per_channel))[1]
    assert "one value per channel" in errors
