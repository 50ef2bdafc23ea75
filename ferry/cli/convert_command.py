"""``ferry convert IN OUT --opset N``: express a model at another ai.onnx opset."""

from __future__ import annotations

import argparse

from ferry.errors import ConversionError

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    convert = sub.add_parser(
        "convert", help="convert a model to another ai.onnx opset (up or down, 7 and newer)"
    )
    convert.add_argument("model", help="path of an .onnx file")
    convert.add_argument("output", help="where to write the converted model")
    convert.add_argument("--opset", type=int, required=True, help="the target ai.onnx opset version")
    convert.set_defaults(run=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    from ferry.convert import convert_version
    from ferry.format import load, save

    model = load(args.model)
    before = model.opset_imports.get("", model.opset_imports.get("ai.onnx"))
    try:
        converted = convert_version(model, args.opset)
    except ConversionError as error:
        print(f"{args.model}: cannot express the model at opset {args.opset}; nothing written:")
        for node, reason in error.blocking:
            print(f"  {node}: {reason}")
        return 1
    save(converted, args.output)
    print(f"{args.model}: opset {before} -> {args.opset}, IR version {converted.ir_version}; "
          f"wrote {args.output}")
    return 0
