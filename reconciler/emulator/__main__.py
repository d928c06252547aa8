"""`python -m reconciler.emulator`: a dependency-free runner (no click, no reconciler CLI).

The full flag set lives in `reconciler emulator serve`; this runner exists so the emulator can run
on its own (benchmarks, another repo) with every setting given as `--name value`.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reconciler.emulator.server import serve
from reconciler.emulator.settings import EmulatorSettings


def parse(argv: Sequence[str] | None = None) -> tuple[dict[str, Any], EmulatorSettings]:
    """The runner's own options (host, port, data dir, log level) and the settings."""
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
            # --name / --no-name, defaulting as the settings do: a plain store_true made every
            # setting whose default is True (undeletable_result_files) False unless named.
            parser.add_argument(
                flag, dest=field.name, action=argparse.BooleanOptionalAction, default=field.default
            )
        else:
            convert = kind if kind in (int, float) else str
            parser.add_argument(flag, dest=field.name, type=convert, default=field.default)
    args = vars(parser.parse_args(argv))
    runner = {name: args.pop(name) for name in ("host", "port", "data_dir", "log_level")}
    return runner, EmulatorSettings(**args)


def main() -> None:
    runner, settings = parse()
    serve(
        runner["data_dir"],
        settings,
        host=runner["host"],
        port=runner["port"],
        log_level=runner["log_level"],
    )


if __name__ == "__main__":
    main()
