"""Run one parser over hypothesis-generated hostile inputs in this process and report counts.

`test_fuzz.py` starts it as a subprocess (`python -m tests.security.fuzz_worker PARSER N`) so a
crash (SIGSEGV, abort) of any case shows as the process dying, not as a lost pytest worker.
Prints one JSON line: {"parser", "cases", "tracebacks", "first"}; a traceback is any exception
that is not the parser's own error type.
"""

from __future__ import annotations

import json
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.config import load_project
from reconciler.errors import ReconcilerError
from reconciler.manifests.jsonl import scan_jsonl
from reconciler.manifests.loader import load_desired
from reconciler.manifests.model import Task
from reconciler.plan import planfile
from reconciler.state.codec import decode

MANIFEST = (
    "apiVersion: reconciler/v1\nkind: BatchJob\nmetadata:\n  name: a\n  labels:\n    x: y\n"
    "spec:\n  model: gemini-2.5-flash\n  source:\n    requests:\n      - key: k\n"
    "        request:\n          contents:\n            - parts:\n                - text: hi\n"
    "  output: results/a.jsonl\n"
)
PROJECT = "manifests: manifests\nstate: state/s.json\nendpoint: emulator\nparallelism: 4\n"
JSONL = '{"key":"k1","request":{"contents":[{"parts":[{"text":"hi"}]}]}}\n'
STATE = json.dumps(
    {"format_version": 4, "lineage": "l", "serial": 1, "resources": {}, "tombstones": {}}
)


def _nest(depth: int, flow: bool) -> str:
    if flow:
        return "[" * depth + "]" * depth
    # Block nesting grows quadratically in bytes: 3,000 levels are already 4.5 MB.
    depth = min(depth, 3_000)
    return "".join(" " * i + "k:\n" for i in range(depth)) + " " * depth + "v\n"


def _hostile_fragment() -> st.SearchStrategy[str]:
    deep = st.builds(_nest, st.integers(1, 50_000), st.booleans())
    numbers = st.integers(1, 6_000).map(lambda n: "9" * n)
    nasty = st.sampled_from(
        [
            "!!python/object/apply:os.system ['true']",
            "&a [*a, *a]",
            "*undefined",
            "{",
            "]",
            "\x00",
            "\ufeff",
            "%YAML 1.1\n---",
            "<<: *a",
            "? [a]\n: b",
            "- - - - -",
            '"\\uD800"',
            "1e999999",
            "-0x" + "f" * 5_000,
            "{" * 100 + "}" * 100,
        ]
    )
    return st.one_of(deep, numbers, nasty, st.text(max_size=200))


def _mutated(seed: str) -> st.SearchStrategy[str]:
    """The seed with a hostile fragment spliced in at a random place, or cut, or replaced."""

    @st.composite
    def build(draw: st.DrawFn) -> str:
        at = draw(st.integers(0, len(seed)))
        choice = draw(st.integers(0, 3))
        if choice == 0:
            return seed[:at]
        if choice == 1:
            return draw(_hostile_fragment())
        end = draw(st.integers(at, len(seed)))
        return seed[:at] + draw(_hostile_fragment()) + seed[end:]

    return build()


def _manifest(text: str, root: Path) -> None:
    (root / "manifests").mkdir(exist_ok=True)
    (root / "reconciler.yaml").write_text("endpoint: emulator\n")
    (root / "manifests" / "a.yaml").write_text(text, errors="surrogatepass")
    load_desired(load_project(root, environ={}))


def _project_file(text: str, root: Path) -> None:
    (root / "reconciler.yaml").write_text(text, errors="surrogatepass")
    load_project(root, environ={})


def _jsonl(text: str, root: Path) -> None:
    (root / "in.jsonl").write_text(text, errors="surrogatepass")
    scan_jsonl(root / "in.jsonl", Task.GENERATE, root, workers=1)


def _state(text: str, root: Path) -> None:
    decode(text.encode(errors="surrogatepass"), source="state.json")


def _plan(text: str, root: Path) -> None:
    data = text.encode(errors="surrogatepass")
    planfile.loads(data)
    planfile.loads(data, signing_key=b"k")


PARSERS: dict[str, tuple[Callable[[str, Path], None], str]] = {
    "manifests": (_manifest, MANIFEST),
    "project": (_project_file, PROJECT),
    "jsonl": (_jsonl, JSONL),
    "state": (_state, STATE),
    "plan": (_plan, '{"kind": "reconciler-plan", "format_version": 2, "plan": {}}'),
}


def main(name: str, cases: int) -> None:
    run, seed = PARSERS[name]
    counts = {"cases": 0, "tracebacks": 0}
    first: list[str] = []
    scratch = ""

    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(_mutated(seed))
    def case(text: str) -> None:
        counts["cases"] += 1
        directory = Path(tempfile.mkdtemp(dir=scratch))
        try:
            run(text, directory)
        except ReconcilerError:
            pass
        except Exception:
            counts["tracebacks"] += 1
            if not first:
                first.append(traceback.format_exc(limit=4)[-2000:])

    with tempfile.TemporaryDirectory() as top:
        scratch = top
        case()
    print(json.dumps({"parser": name, **counts, "first": first[0] if first else None}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
