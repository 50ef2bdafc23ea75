"""SessionOptions.enable_cpu_mem_arena: activations reuse the process's memory between runs."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PROGRAM = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from onnx import TensorProto, helper
    import ferry
    from ferry.runtime.options import SessionOptions

    shape = [3000, 4000]  # 48 MB activations: above glibc's largest automatic mmap threshold
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, shape)
    nodes = [helper.make_node("Mul", ["x", "x"], ["y"]), helper.make_node("Add", ["y", "x"], ["z"])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [z]),
                              opset_imports=[helper.make_opsetid("", 17)])
    options = SessionOptions()
    options.enable_cpu_mem_arena = sys.argv[1] == "on"
    session = ferry.InferenceSession(model.SerializeToString(), options)
    feeds = {"x": np.ones(shape, np.float32)}
    for _ in range(2):
        session.run(None, feeds)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    session.run(None, feeds)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


def _page_faults_of_one_run(arena: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROGRAM, arena], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_arena_removes_page_faults_of_large_activations():
    without = _page_faults_of_one_run("off")
    with_arena = _page_faults_of_one_run("on")
    # two 48 MB outputs written to fresh pages: 24,000 faults of 4 KiB pages, or as few as 48 of
    # 2 MiB transparent huge pages; with the arena, the second run reuses the first one's memory
    assert without >= 40
    assert with_arena <= without / 10
