"""Shape and type inference with symbolic dimensions.

``infer_shapes(model)`` returns a copy of ``model`` in which every value carries its
element type and shape; dims are ints or symbolic expressions (``batch``, ``seq*2``,
``(H-3)//2+1``, see :mod:`ferry.shapes.expr`). ``explain_shape(model, name)`` says
where each dim of a value comes from. Rules live in :mod:`ferry.shapes.rules`, one
module per operator family, registered with :func:`shape_rule`.
"""

from __future__ import annotations

from ferry.shapes.context import InferenceContext
from ferry.shapes.explain import explain_shape
from ferry.shapes.expr import Expr, from_dim, to_dim
from ferry.shapes.infer import ShapeInference, infer, infer_shapes
from ferry.shapes.registry import lookup_rule, registered_rules, shape_rule

__all__ = [
    "Expr",
    "InferenceContext",
    "ShapeInference",
    "explain_shape",
    "from_dim",
    "infer",
    "infer_shapes",
    "lookup_rule",
    "registered_rules",
    "shape_rule",
    "to_dim",
]
