"""The export's self-check: the model against the program, at the traced sizes and others."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils import _pytree as pytree

from ferry.errors import ExportError, FerryError

__all__ = ["check_export", "compare"]

RTOL = 1e-3
ATOL = 1e-4
# half precision keeps 11 (float16) or 8 (bfloat16) significant bits: compare at that scale
_HALF_TOLERANCE = {np.dtype(np.float16): (1e-2, 1e-3)}


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().contiguous().numpy()


def compare(expected: list[np.ndarray], got: list[np.ndarray]) -> tuple[float, list[str]]:
    """The largest absolute difference and a description of each mismatching output."""
    worst = 0.0
    problems = []
    for index, (want, have) in enumerate(zip(expected, got)):
        if want.shape != have.shape:
            problems.append(
                f"output {index}: shape {list(have.shape)}, program gives {list(want.shape)}"
            )
            continue
        if want.size == 0:
            continue
        if want.dtype.kind in "fc":
            with np.errstate(invalid="ignore"):  # inf - inf where both are inf
                delta = np.abs(want.astype(np.float64) - have.astype(np.float64))
            diff = float(np.nanmax(delta)) if not np.all(np.isnan(delta)) else 0.0
            worst = max(worst, diff)
            rtol, atol = _HALF_TOLERANCE.get(want.dtype, (RTOL, ATOL))
            if not np.allclose(have, want, rtol=rtol, atol=atol, equal_nan=True):
                problems.append(f"output {index}: max abs difference {diff:.3g}")
        elif not np.array_equal(want, have):
            problems.append(f"output {index}: values differ")
    return worst, problems


def _run_program(model, args, kwargs) -> list[np.ndarray]:
    with torch.no_grad():
        out = model(*args, **kwargs)
    return [_numpy(t) for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]


def check_export(result, model, args, kwargs, leaves, spec, inputs, probe_leaves) -> None:
    """Check the exported model: checker, then ferry's runtime against the program at the
    traced sizes and (with dynamic axes) at the probe sizes. Records the max difference."""
    from ferry.checker import check_model
    from ferry.runtime import InferenceSession

    check_model(result)
    session = InferenceSession(result, check=False)
    was_training = _set_eval(model)
    try:
        result.max_difference = _check_at(session, model, leaves, spec, inputs, "traced")
        if any(i.axes for i in inputs):
            _check_at(session, model, probe_leaves, spec, inputs, "other")
            probe_tensors = [
                probe for probe, leaf in zip(probe_leaves, leaves) if isinstance(leaf, torch.Tensor)
            ]
            result.checked_sizes = [
                {name: int(tensor.shape[axis]) for axis, name in info.axes.items()}
                for info, tensor in zip(inputs, probe_tensors)
            ]
    finally:
        _restore(model, was_training)


def _check_at(session, model, leaves, spec, inputs, label: str) -> float:
    call_args, call_kwargs = pytree.tree_unflatten(leaves, spec)
    expected = _run_program(model, call_args, call_kwargs)
    tensors = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]
    feeds = {i.name: _numpy(t) for i, t in zip(inputs, tensors)}
    feeds = {k: v for k, v in feeds.items() if k in {n.name for n in session.get_inputs()}}
    try:
        worst, problems = compare(expected, session.run(None, feeds))
    except FerryError as error:  # e.g. a Reshape to sizes baked in at the traced sizes
        worst, problems = 0.0, [f"the model fails to run ({error})"]
    if problems:
        sizes = ", ".join(f"{i.name}{list(t.shape)}" for i, t in zip(inputs, tensors))
        hint = (
            " — a size was probably baked into the graph; see the export's specializations"
            if label == "other"
            else ""
        )
        raise ExportError(
            f"the exported model does not match the program at the {label} input sizes "
            f"({sizes}): " + "; ".join(problems) + hint
        )
    return worst


def _set_eval(model):
    if isinstance(model, torch.nn.Module):
        modes = [(m, m.training) for m in model.modules()]
        model.eval()
        return modes
    return []


def _restore(model, modes) -> None:
    for module, training in modes:
        module.train(training)
