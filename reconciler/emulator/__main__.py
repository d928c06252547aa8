"""`python -m reconciler.emulator`: a dependency-free runner (no click, no reconciler CLI).

The full flag set lives in `reconciler emulator serve`; this runner exists so the emulator can run
on its own (benchmarks, another repo) with every setting given as `--name value`.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path

from reconciler.emulator.server import serve
from reconciler.emulator.settings import EmulatorSettings


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m reconciler.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--data-dir", type=Path, default=Path(".reconciler/emulator"))
    parser.add_argument("--log-level", default="warning")
    hints = typing.get_type_hints(EmulatorSettings)
    for field in dataclasses.fields(EmulatorSettings):
        flag = "--" + field.name.replace("_", "-")
        kind = hints[field.name]
        if kind is bool:
            parser.add_argument(flag, dest=field.name, action="store_true")
        else:
            convert = kind if kind in (int, float) else str
            parser.add_argument(flag, dest=field.name, type=convert, default=field.default)
    args = vars(parser.parse_args())
    host, port, data_dir, log_level = (
        args.pop("host"),
        args.pop("port"),
        args.pop("data_dir"),
        args.pop("log_level"),
    )
    serve(data_dir, EmulatorSettings(**args), host=host, port=port, log_level=log_level)


if __name__ == "__main__":
    main()
