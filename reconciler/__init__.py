"""reconciler: GitOps for Gemini Batch API jobs.

The public contract is the command line (`reconciler.cli`) and the documents it reads and writes
(manifests, `reconciler.yaml`, state, plan files, JSON output). Internal modules are importable but
carry no stability promise.
"""

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "gemini-batch-reconciler"
"""The name on the package index (`reconciler` there is an unrelated project)."""

try:
    # Set at build time from the git tag (setuptools-scm); see pyproject.toml.
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0.0.0+unknown"
