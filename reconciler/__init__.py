"""reconciler: GitOps for Gemini Batch API jobs.

The public contract is the command line (`reconciler.cli`) and the documents it reads and writes
(manifests, `reconciler.yaml`, state, plan files, JSON output). Internal modules are importable but
carry no stability promise.
"""

__version__ = "0.1.0"
