"""reconciler: GitOps for Gemini Batch API jobs.

The public contract is the command line (`reconciler.cli`) and the documents it reads and writes
(manifests, `reconciler.yaml`, state, plan files, JSON output). Internal modules are importable but
carry no stability promise.
"""

from __future__ import annotations

DISTRIBUTION = "gemini-batch-reconciler"
"""The name on the package index (`reconciler` there is an unrelated project)."""

_version: str | None = None


def __getattr__(name: str) -> str:
    """`__version__`, read from the installed metadata on first use.

    Lazily: importing `importlib.metadata` costs a sizeable share of `reconciler --help`, and
    most commands never print the version.
    """
    global _version
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _version is None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            # Set at build time from the git tag (setuptools-scm); see pyproject.toml.
            _version = version(DISTRIBUTION)
        except PackageNotFoundError:  # a source tree on sys.path that was never installed
            _version = "0.0.0+unknown"
    return _version
