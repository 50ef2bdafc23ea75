"""Shape rules for the ai.onnx.ml operators the runtime implements (the operators of the
default domain all have rules in the family modules).

Models that take a [N, F] (or [F], one row) input give one row of output per input row:
labels [N], scores or predictions [N, width], with the width read from the attributes.
"""

from __future__ import annotations

import numpy as np

from ferry.ir import DataType, MapType, SequenceType, TensorType
from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr
from ferry.shapes.registry import shape_rule

ML = "ai.onnx.ml"


def _rows(ctx: InferenceContext) -> Expr | None:
    """N for an input read as a [N, F] matrix (rank 1: one row); error on a scalar."""
    dims = ctx.input_shape(0)
    if dims is None:
        return None
    if not dims:
        ctx.error("the input must be [N, F] or [F], got a scalar")
        raise _Stop
    return Expr.const(1) if len(dims) == 1 else dims[0]


class _Stop(Exception):
    """Raised after an error is recorded; rules registered with @_ml_rule stop quietly."""


def _ml_rule(op_type: str, since: int | tuple[int, ...] = 1):
    def register(function):
        def rule(ctx: InferenceContext) -> None:
            try:
                function(ctx)
            except _Stop:
                return

        rule.__name__ = function.__name__
        rule.__doc__ = function.__doc__
        return shape_rule(op_type, since, domain=ML)(rule)

    return register


def _label_dtype(ctx: InferenceContext, ints: str, strings: str) -> DataType:
    return DataType.STRING if ctx.attr(strings) else DataType.INT64


def _label_count(ctx: InferenceContext, ints: str, strings: str) -> int:
    return len(ctx.attr(strings) or ctx.attr(ints) or [])


def _same_shape(ctx: InferenceContext, dtype: DataType | None) -> None:
    ctx.set_output(0, dtype, ctx.input_shape(0))


# -- element-wise preprocessing -----------------------------------------------------------------
@_ml_rule("Binarizer")
def binarizer(ctx: InferenceContext) -> None:
    """0/1 in the input's type and shape."""
    _same_shape(ctx, ctx.input_dtype(0))


@_ml_rule("Imputer")
def imputer(ctx: InferenceContext) -> None:
    """The input's type and shape."""
    _same_shape(ctx, ctx.input_dtype(0))


@_ml_rule("Scaler")
def scaler(ctx: InferenceContext) -> None:
    """float, the input's shape."""
    _same_shape(ctx, DataType.FLOAT)


@_ml_rule("Normalizer")
def normalizer(ctx: InferenceContext) -> None:
    """float, the input's shape."""
    _same_shape(ctx, DataType.FLOAT)


@_ml_rule("LabelEncoder", since=1)
def label_encoder(ctx: InferenceContext) -> None:
    """The input's shape in the values' type (v1: strings map to int64 and back)."""
    if ctx.opset < 2:
        string_input = ctx.input_dtype(0) == DataType.STRING
        _same_shape(ctx, DataType.INT64 if string_input else DataType.STRING)
        return
    kinds = {"values_strings": DataType.STRING, "values_int64s": DataType.INT64,
             "values_floats": DataType.FLOAT}
    dtype = next((d for name, d in kinds.items() if ctx.attr(name) is not None), None)
    values = ctx.attr("values_tensor")
    if values is not None:
        dtype = DataType.STRING if values.dtype.kind in "OUS" else DataType(_code_of(values))
    _same_shape(ctx, dtype)


def _code_of(array: np.ndarray) -> int:
    from ferry.ir import from_numpy_dtype

    return int(from_numpy_dtype(array.dtype))


@_ml_rule("CategoryMapper")
def category_mapper(ctx: InferenceContext) -> None:
    """Strings map to int64, int64 to strings; the input's shape."""
    string_input = ctx.input_dtype(0) == DataType.STRING
    _same_shape(ctx, DataType.INT64 if string_input else DataType.STRING)


@_ml_rule("OneHotEncoder")
def one_hot_encoder(ctx: InferenceContext) -> None:
    """float, the input's shape plus one axis of the number of categories."""
    dims = ctx.input_shape(0)
    width = Expr.const(_label_count(ctx, "cats_int64s", "cats_strings"))
    ctx.set_output(0, DataType.FLOAT, None if dims is None else [*dims, width])


@_ml_rule("ArrayFeatureExtractor")
def array_feature_extractor(ctx: InferenceContext) -> None:
    """X's entries along its last axis at the indices Y: [..., len(Y)] ([1, len(Y)] for 1-D X)."""
    dims, indices = ctx.input_shape(0), ctx.input_shape(1)
    count = None
    if indices is not None and all(d is not None for d in indices):
        count = Expr.const(1)
        for dim in indices:
            count = count * dim
    if dims is None:
        ctx.set_output(0, ctx.input_dtype(0), None)
    elif not dims:
        ctx.error("X must have rank >= 1, got a scalar")
    else:
        leading = [Expr.const(1)] if len(dims) == 1 else dims[:-1]
        ctx.set_output(0, ctx.input_dtype(0), [*leading, count])


@_ml_rule("FeatureVectorizer")
def feature_vectorizer(ctx: InferenceContext) -> None:
    """float [N, sum(inputdimensions)]."""
    widths = ctx.attr("inputdimensions") or []
    if len(widths) != ctx.num_inputs():
        ctx.error(f"{ctx.num_inputs()} inputs but {len(widths)} inputdimensions")
        return
    rows = _rows(ctx)
    ctx.set_output(0, DataType.FLOAT, [rows, Expr.const(sum(widths))])


# -- models ---------------------------------------------------------------------------------
def _classifier(ctx: InferenceContext, ints: str, strings: str, width: int) -> None:
    rows = _rows(ctx)
    ctx.set_output(0, _label_dtype(ctx, ints, strings), [rows])
    ctx.set_output(1, DataType.FLOAT, [rows, Expr.const(width)])


@_ml_rule("LinearClassifier")
def linear_classifier(ctx: InferenceContext) -> None:
    """labels [N], scores [N, number of class labels]."""
    labels = _label_count(ctx, "classlabels_ints", "classlabels_strings")
    _classifier(ctx, "classlabels_ints", "classlabels_strings", labels)


@_ml_rule("LinearRegressor")
def linear_regressor(ctx: InferenceContext) -> None:
    """float [N, targets]."""
    ctx.set_output(0, DataType.FLOAT, [_rows(ctx), Expr.const(int(ctx.attr("targets", 1)))])


@_ml_rule("SVMClassifier")
def svm_classifier(ctx: InferenceContext) -> None:
    """labels [N]; scores [N, classes], or one per class pair for a kernel SVM with more
    than two classes and no probability model."""
    labels = _label_count(ctx, "classlabels_ints", "classlabels_strings")
    width = labels
    if ctx.attr("vectors_per_class") and ctx.attr("support_vectors") and not ctx.attr("prob_a"):
        width = 2 if labels == 2 else labels * (labels - 1) // 2
    _classifier(ctx, "classlabels_ints", "classlabels_strings", width)


@_ml_rule("SVMRegressor")
def svm_regressor(ctx: InferenceContext) -> None:
    """float [N, 1]."""
    ctx.set_output(0, DataType.FLOAT, [_rows(ctx), Expr.const(1)])


@_ml_rule("TreeEnsembleClassifier")
def tree_ensemble_classifier(ctx: InferenceContext) -> None:
    """labels [N], scores [N, number of class labels]."""
    labels = _label_count(ctx, "classlabels_int64s", "classlabels_strings")
    _classifier(ctx, "classlabels_int64s", "classlabels_strings", labels)


@_ml_rule("TreeEnsembleRegressor")
def tree_ensemble_regressor(ctx: InferenceContext) -> None:
    """float [N, n_targets] (default: the largest target id + 1)."""
    targets = ctx.attr("n_targets")
    if targets is None:
        targets = max(ctx.attr("target_ids") or [-1]) + 1
    ctx.set_output(0, DataType.FLOAT, [_rows(ctx), Expr.const(int(targets))])


@_ml_rule("TreeEnsemble", since=5)
def tree_ensemble(ctx: InferenceContext) -> None:
    """[N, n_targets] in the input's type (default: the largest leaf target id + 1)."""
    dims = ctx.input_shape(0)
    if dims is not None and len(dims) != 2:
        ctx.error(f"the input must be [N, F], got rank {len(dims)}")
        return
    targets = ctx.attr("n_targets")
    if targets is None:
        targets = max(ctx.attr("leaf_targetids") or [-1]) + 1
    ctx.set_output(0, ctx.input_dtype(0), [_rows(ctx), Expr.const(int(targets))])


# -- maps ---------------------------------------------------------------------------------------
@_ml_rule("ZipMap")
def zip_map(ctx: InferenceContext) -> None:
    """A sequence of maps from each class label to its float score."""
    key = _label_dtype(ctx, "classlabels_int64s", "classlabels_strings")
    ctx.set_output_type(0, SequenceType(MapType(key, TensorType(DataType.FLOAT, None))))


@_ml_rule("DictVectorizer")
def dict_vectorizer(ctx: InferenceContext) -> None:
    """[1, vocabulary size] of the map's value type."""
    source = ctx.input_type(0)
    value = source.value_type if isinstance(source, MapType) else None
    dtype = value.dtype if isinstance(value, TensorType) else None
    width = len(ctx.attr("string_vocabulary") or ctx.attr("int64_vocabulary") or [])
    ctx.set_output(0, dtype, [Expr.const(1), Expr.const(width)])


_CAST_TO = {"TO_FLOAT": DataType.FLOAT, "TO_STRING": DataType.STRING, "TO_INT64": DataType.INT64}


@_ml_rule("CastMap")
def cast_map(ctx: InferenceContext) -> None:
    """[1, number of keys] (DENSE) or [1, max_map] (SPARSE) in the ``cast_to`` type."""
    cast_to = ctx.attr("cast_to", "TO_FLOAT")
    if cast_to not in _CAST_TO:
        ctx.error(f"cast_to must be one of {sorted(_CAST_TO)}, got {cast_to!r}")
        return
    if ctx.attr("map_form", "DENSE") == "SPARSE":
        width = Expr.const(int(ctx.attr("max_map", 1)))
    else:
        width = ctx.fresh("how many keys the map holds depends on its data")
    ctx.set_output(0, _CAST_TO[cast_to], [Expr.const(1), width])
