"""The official ONNX conformance data, laid out as onnx's backend test folders.

Node cases come from onnx's own generator (``collect_testcases``) and are written once
into ``.cache/onnx-<version>/node`` (about 1,900 folders); the ``pytorch-converted``,
``pytorch-operator``, ``simple`` and ``light`` folders ship inside the onnx wheel.
Each case folder holds ``model.onnx`` (or ``*.onnx`` for light) and
``test_data_set_N/{input,output}_K.pb``. Uses onnx only as the oracle that makes data.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import json
import os
import pathlib

import onnx
import onnx.backend.test
from onnx import numpy_helper

REPO = pathlib.Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / f"onnx-{onnx.__version__}"
WHEEL_DATA = pathlib.Path(onnx.backend.test.__file__).parent / "data"
SUITES = ("node", "pytorch-converted", "pytorch-operator", "simple", "light")


@dataclasses.dataclass(frozen=True)
class Case:
    suite: str
    name: str
    model_path: pathlib.Path
    data_sets: tuple[pathlib.Path, ...]  # test_data_set_N folders (empty for light)
    rtol: float = 1e-3
    atol: float = 1e-7

    @property
    def id(self) -> str:
        return f"{self.suite}/{self.name}"


def _value_proto(value, value_info: onnx.ValueInfoProto):
    kind = value_info.type.WhichOneof("value")
    if kind == "sequence_type":
        return numpy_helper.from_list(value, value_info.name)
    if kind == "optional_type":
        return numpy_helper.from_optional(value, value_info.name)
    if kind == "map_type":
        return numpy_helper.from_dict(value, value_info.name)
    if isinstance(value, onnx.TensorProto):
        return value
    return numpy_helper.from_array(value, value_info.name)


def _write_node_cases(root: pathlib.Path) -> None:
    import onnx.backend.test.case.node as node_cases

    tolerances = {}
    for case in node_cases.collect_testcases():
        folder = root / case.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.onnx").write_bytes(case.model.SerializeToString())
        graph = case.model.graph
        for index, (inputs, outputs) in enumerate(case.data_sets):
            data_dir = folder / f"test_data_set_{index}"
            data_dir.mkdir(exist_ok=True)
            for kind, values, infos in (
                ("input", inputs, graph.input),
                ("output", outputs, graph.output),
            ):
                for k, (value, info) in enumerate(zip(values, infos)):
                    proto = _value_proto(value, info)
                    (data_dir / f"{kind}_{k}.pb").write_bytes(proto.SerializeToString())
        tolerances[case.name] = (case.rtol, case.atol)
    (root / "tolerances.txt").write_text(
        "".join(f"{name} {r!r} {a!r}\n" for name, (r, a) in sorted(tolerances.items()))
    )


def node_data_root() -> pathlib.Path:
    """Generate the node cases once (marker file written last) and return their folder."""
    root = CACHE / "node"
    marker = root / ".complete"
    if not marker.exists():
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _write_node_cases(root)
        marker.write_text("ok\n")
    return root


@functools.cache
def cases(suite: str) -> tuple[Case, ...]:
    """Every case of ``suite`` (one of SUITES), sorted by name."""
    if suite == "node":
        root = node_data_root()
        tolerances = {}
        for line in (root / "tolerances.txt").read_text().splitlines():
            name, rtol, atol = line.split()
            tolerances[name] = (float(rtol), float(atol))
        return tuple(
            Case(
                "node", name, root / name / "model.onnx", _data_sets(root / name), *tolerances[name]
            )
            for name in sorted(tolerances)
        )
    root = WHEEL_DATA / suite
    if suite == "light":
        tolerances = _light_tolerances()
        return tuple(
            Case("light", path.stem, path, (), *tolerances[path.name])
            for path in sorted(root.glob("*.onnx"))
        )
    found = []
    for folder in sorted(p for p in root.iterdir() if (p / "model.onnx").exists()):
        rtol, atol = _folder_tolerances(folder)
        found.append(
            Case(suite, folder.name, folder / "model.onnx", _data_sets(folder), rtol, atol)
        )
    return tuple(found)


def _folder_tolerances(folder: pathlib.Path) -> tuple[float, float]:
    """onnx's loader: rtol=1e-3, atol=1e-7 unless the folder's data.json says otherwise."""
    rtol, atol = 1e-3, 1e-7
    settings = folder / "data.json"
    if settings.exists():
        data = json.loads(settings.read_text())
        rtol, atol = data.get("rtol", rtol), data.get("atol", atol)
    return rtol, atol


def _light_tolerances() -> dict[str, tuple[float, float]]:
    import onnx.backend.test.case.model as model_cases

    return {
        os.path.basename(case.url): (case.rtol, case.atol)
        for case in model_cases.collect_testcases()
        if case.url and case.url.startswith("onnx/backend/test/data/light/")
    }


def light_inputs(model: onnx.ModelProto) -> list:
    """The inputs onnx's runner makes for light models: arange(n)/n in the declared shape
    (unknown dims taken as 1), float32."""
    import numpy as np

    initializers = {t.name for t in model.graph.initializer}
    inputs = []
    for info in model.graph.input:
        if info.name in initializers:
            continue
        dims = info.type.tensor_type.shape.dim
        shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in dims)
        count = int(np.prod(shape))
        inputs.append((np.arange(count).reshape(shape) / count).astype(np.float32))
    return inputs


def _data_sets(folder: pathlib.Path) -> tuple[pathlib.Path, ...]:
    return tuple(
        sorted(folder.glob("test_data_set_*"), key=lambda p: int(p.name.rsplit("_", 1)[1]))
    )


def all_cases() -> list[Case]:
    return [case for suite in SUITES for case in cases(suite)]


def data_files(data_set: pathlib.Path, kind: str) -> list[pathlib.Path]:
    """``input_K.pb`` or ``output_K.pb`` files of one data set, in K order."""
    files = glob.glob(os.path.join(data_set, f"{kind}_*.pb"))
    return sorted((pathlib.Path(f) for f in files), key=lambda p: int(p.stem.rsplit("_", 1)[1]))


def save_for_case(model, case: Case, folder: pathlib.Path) -> pathlib.Path:
    """Save ``model`` (a rewrite of ``case``'s model) into ``folder`` under the case's file
    name, with what the case's runner reads beside it (light cases: the expected output)."""
    import shutil

    import ferry

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / case.model_path.name
    ferry.save(model, path)
    if case.suite == "light":
        expected = case.model_path.with_name(case.model_path.stem + "_output_0.pb")
        shutil.copy(expected, folder / expected.name)
    return path
