"""Checking an export the way the tracer's tests must: both checkers, both runtimes,
torch as the reference, and other sizes of every dynamic axis."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import torch
from torch.utils import _pytree as pytree

import ferry


def numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().contiguous().numpy()


def torch_outputs(model, args, kwargs=None) -> list[np.ndarray]:
    with torch.no_grad():
        out = model(*args, **(kwargs or {}))
    return [numpy(t) for t in pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]


def run_both(exported: ferry.Model, feeds: dict[str, np.ndarray]) -> tuple[list, list]:
    """Outputs of onnxruntime and of ferry.InferenceSession for the same feeds."""
    data = ferry.model_to_bytes(exported)
    ort = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = {i.name for i in ort.get_inputs()}
    ort_out = ort.run(None, {k: v for k, v in feeds.items() if k in names})
    ferry_out = ferry.InferenceSession(data).run(None, {k: v for k, v in feeds.items() if k in names})
    return ort_out, ferry_out


def assert_close(expected, got, rtol, atol, label) -> None:
    assert len(expected) == len(got), f"{label}: {len(got)} outputs, torch gives {len(expected)}"
    for index, (want, have) in enumerate(zip(expected, got)):
        assert have.shape == want.shape, f"{label} output {index}: shape {have.shape} vs torch {want.shape}"
        np.testing.assert_allclose(have, want, rtol=rtol, atol=atol, err_msg=f"{label} output {index}")


def check_export(
    model,
    args: tuple,
    *,
    input_names=None,
    output_names=None,
    dynamic_axes=None,
    other_inputs: list[tuple] = (),
    rtol: float = 1e-4,
    atol: float = 1e-5,
    opset_version=None,
    kwargs=None,
) -> ferry.Model:
    """Export ``model`` and assert everything issue #4 asks of an export:

    - ferry.check_model and onnx.checker.check_model(full_check=True) accept it;
    - onnxruntime and ferry's runtime both match torch on ``args``;
    - with dynamic axes, both match torch on each tuple of ``other_inputs``.
    """
    if isinstance(model, torch.nn.Module):
        model.eval()
    args = args if isinstance(args, tuple) else (args,)
    exported = ferry.export(
        model, args, kwargs=kwargs, input_names=input_names, output_names=output_names,
        dynamic_axes=dynamic_axes, opset_version=opset_version,
    )
    ferry.check_model(exported)
    onnx.checker.check_model(onnx.load_from_string(ferry.model_to_bytes(exported)), full_check=True)
    names = [v.name for v in exported.graph.inputs if v.name not in exported.graph.initializers]
    for label, inputs in [("example", args), *[(f"other size {i}", o) for i, o in enumerate(other_inputs)]]:
        inputs = inputs if isinstance(inputs, tuple) else (inputs,)
        expected = torch_outputs(model, inputs, kwargs)
        tensors = [t for t in pytree.tree_leaves((inputs, kwargs or {})) if isinstance(t, torch.Tensor)]
        feeds = dict(zip(names, (numpy(t) for t in tensors)))
        ort_out, ferry_out = run_both(exported, feeds)
        assert_close(expected, ort_out, rtol, atol, f"onnxruntime at {label}")
        assert_close(expected, ferry_out, rtol, atol, f"ferry at {label}")
    return exported
