"""The pass framework: a :class:`Pass` rewrites a model in place and says whether it did.

Subclasses set ``name``, document what they rewrite in their docstring, and implement
:meth:`Pass.run`, which receives a :class:`~ferry.passes._context.Context` and returns
how many rewrites it made. Calling a pass returns a :class:`PassResult`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ferry.ir import Model, Node
from ferry.passes._context import Context, is_standard

__all__ = ["NodeRewritePass", "Pass", "PassResult"]


@dataclass
class PassResult:
    """The (same, edited in place) model, whether it changed, and how many rewrites."""

    model: Model
    modified: bool
    rewrites: int = 0


class Pass:
    """Base class of the optimizer's passes."""

    name: str = "pass"

    def __call__(self, model: Model) -> PassResult:
        rewrites = self.run(Context(model))
        return PassResult(model, rewrites > 0, rewrites)

    def run(self, context: Context) -> int:
        """Rewrite ``context.model`` in place; return the number of rewrites made."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class NodeRewritePass(Pass):
    """A pass that visits every standard node whose op type is in ``op_types`` (in every
    graph, subgraphs included, at opset ``min_opset`` or later) and rewrites it in place."""

    op_types: frozenset[str] = frozenset()
    min_opset: int = 1

    def run(self, context: Context) -> int:
        if context.opset < self.min_opset:
            return 0
        rewrites = 0
        for graph in context.graphs:
            for node in graph:  # a snapshot: earlier rewrites may have removed this node
                if node.op_type in self.op_types and is_standard(node) and node.graph is graph:
                    rewrites += self.rewrite(context, node)
        return rewrites

    def rewrite(self, context: Context, node: Node) -> int:
        """Rewrite ``node`` if the pass applies; return 1 if it did, else 0."""
        raise NotImplementedError
