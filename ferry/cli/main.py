"""``ferry``: inspect, check, print, infer shapes, run, benchmark and export models from the shell.

Errors print one line (``ferry: error: ...``) and exit with status 1 (2 for bad usage);
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ferry.errors import FerryError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from ferry.cli import bench, commands, convert_command, demo, export_command, shapes_command

    parser = argparse.ArgumentParser(
        prog="ferry", description="Move neural networks between frameworks through ONNX."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (commands, shapes_command, convert_command, bench, export_command, demo):
        module.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ferry`` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (FerryError, OSError, ValueError, KeyError) as error:
        if args.debug:
            raise
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"ferry: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ferry: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
