"""Print pip constraints pinning every runtime dependency of pyproject.toml to its lower bound.

CI's "lowest" job installs with them (`pip install -c <(python scripts/lowest_constraints.py)`),
so the minima `pyproject.toml` claims are the versions the tests actually ran against. Only the
runtime dependencies and the named extras are pinned; the test toolchain stays at its newest.

    python scripts/lowest_constraints.py [EXTRA ...]     # default extras: postgres gcs
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

_REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?P<spec>[^;]*)(?:;(?P<marker>.*))?$"
)
_LOWER = re.compile(r">=\s*([^,\s]+)")


def pins(requirements: list[str]) -> list[str]:
    """`name==minimum` (marker kept) for each requirement with a `>=` bound, in input order.

    Raises:
        SystemExit: a requirement without a lower bound (a claim nothing could test).
    """
    lines: list[str] = []
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement)
        lower = _LOWER.search(match["spec"]) if match else None
        if match is None or lower is None:
            raise SystemExit(f"lowest_constraints: no >= lower bound in {requirement!r}")
        marker = f"; {match['marker'].strip()}" if match["marker"] else ""
        lines.append(f"{match['name']}=={lower.group(1)}{marker}")
    return lines


def main(argv: list[str]) -> int:
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    table = project["project"]
    requirements = list(table["dependencies"])
    for extra in argv or ["postgres", "gcs"]:
        requirements.extend(table["optional-dependencies"][extra])
    print("\n".join(dict.fromkeys(pins(requirements))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
