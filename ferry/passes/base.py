"""The pass framework: a :class:`Pass` rewrites a model in place and says whether it did.

Subclasses set ``name``, document what they rewrite in their docstring, and implement
:meth:`Pass.run`, which receives a :class:`~ferry.passes._context.Context` and returns
how many rewrites it made. Calling a pass returns a :class:`PassResult`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ferry.ir import Model
from ferry.passes._context import Context

__all__ = ["Pass", "PassResult"]


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
