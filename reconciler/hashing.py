"""The one way a whole file is hashed: sha256 read in large blocks by `hashlib.file_digest`.

Inputs, results copies, downloads and media files are all identified by this digest, so they
must agree byte for byte on how it is made; stdlib only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: Path) -> str:
    """The hex sha256 of the file at `path`.

    Raises:
        OSError: the file cannot be read.
    """
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
