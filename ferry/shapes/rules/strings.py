"""Shape rules for the string operators: StringConcat, StringNormalizer, StringSplit,
RegexFullMatch and TfIdfVectorizer."""

from __future__ import annotations

from ferry.ir import DataType
from ferry.shapes import expr as dims_math
from ferry.shapes.context import InferenceContext
from ferry.shapes.expr import Expr
from ferry.shapes.registry import shape_rule


@shape_rule("StringConcat", since=20)
def string_concat(ctx: InferenceContext) -> None:
    """Element-wise concatenation: the broadcast shape of both inputs."""
    ctx.set_output(0, DataType.STRING, ctx.broadcast(ctx.input_shape(0), ctx.input_shape(1)))


@shape_rule("RegexFullMatch", since=20)
def regex_full_match(ctx: InferenceContext) -> None:
    """A bool per input string."""
    ctx.set_output(0, DataType.BOOL, ctx.input_shape(0))


@shape_rule("StringSplit", since=20)
def string_split(ctx: InferenceContext) -> None:
    """Y: the input's shape plus the longest split's length; Z: int64 counts, input-shaped."""
    dims = ctx.input_shape(0)
    width = ctx.fresh("how many pieces the strings split into depends on their data")
    ctx.set_output(0, DataType.STRING, None if dims is None else [*dims, width])
    ctx.set_output(1, DataType.INT64, dims)


@shape_rule("StringNormalizer", since=10)
def string_normalizer(ctx: InferenceContext) -> None:
    """[C] or [1, C] strings. Without stopwords the count is kept (an empty input gives one
    empty string, so the size is max(C, 1)); removing stopwords makes it data dependent."""
    dims = ctx.input_shape(0)
    if dims is None:
        ctx.set_output(0, DataType.STRING, None)
        return
    if not (len(dims) == 1 or (len(dims) == 2 and dims[0] in (None, 1))):
        ctx.error(f"the input must be [C] or [1, C], got rank {len(dims)}")
        return
    count = dims[-1]
    if ctx.attr("stopwords"):
        count = ctx.fresh("how many strings remain after removing stopwords depends on data")
    elif count is not None:
        count = dims_math.max(count, 1)
    ctx.set_output(0, DataType.STRING, [Expr.const(1), count] if len(dims) == 2 else [count])


@shape_rule("TfIdfVectorizer", since=9)
def tfidf_vectorizer(ctx: InferenceContext) -> None:
    """float [W] for a [C] input, [N, W] for [N, C]; W = max(ngram_indexes) + 1."""
    dims = ctx.input_shape(0)
    indexes = ctx.attr("ngram_indexes") or []
    width = Expr.const(max(indexes) + 1 if indexes else 0)
    if dims is None:
        ctx.set_output(0, DataType.FLOAT, None)
        return
    if len(dims) not in (1, 2):
        ctx.error(f"the input must be [C] or [N, C], got rank {len(dims)}")
        return
    ctx.set_output(0, DataType.FLOAT, [width] if len(dims) == 1 else [dims[0], width])
