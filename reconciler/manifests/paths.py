"""Project-relative paths: confinement to the project root, and local media files for requests.

`ProjectPaths` resolves the root once per run and each project-relative path at most once: a
load of thousands of manifests otherwise resolved the root some ten times per manifest.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

from reconciler.errors import Diagnostic, SourceLocation
from reconciler.hashing import sha256_file
from reconciler.manifests.desired import MediaRef

MEDIA_TYPES = {
    # What Gemini accepts as file parts; guessed from the extension, as the Files API would be told.
    "image/png", "image/jpeg", "image/webp", "image/heic", "image/heif", "image/gif",
    "audio/wav", "audio/x-wav", "audio/mpeg", "audio/mp3", "audio/aiff", "audio/aac", "audio/ogg", "audio/flac",
    "video/mp4", "video/mpeg", "video/quicktime", "video/x-msvideo", "video/x-flv", "video/webm",
    "video/x-ms-wmv", "video/3gpp",
    "application/pdf", "text/plain", "text/html", "text/css", "text/csv", "text/markdown", "text/xml",
    "application/json", "text/x-python",
}  # fmt: skip
_EXTRA_TYPES = {
    ".webp": "image/webp",
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".md": "text/markdown",
}


def confine(root: Path, relative: str) -> tuple[Path | None, str | None]:
    """Resolve `relative` under `root` (symlinks followed); (path, None) or (None, why not).

    The resolved path must stay inside the resolved root, so `..` and symlinks pointing outside
    are refused alike: writing results through such a link would touch files outside the repo.
    """
    return confine_under(root.resolve(), relative)


def confine_under(base: Path, relative: str) -> tuple[Path | None, str | None]:
    """`confine` under a root already resolved."""
    target = (base / relative).resolve()
    if target != base and base not in target.parents:
        return None, f"`{relative}` resolves to {target}, outside the project root"
    return target, None


class ProjectPaths:
    """One run's view of the project root: resolved once, and `confine` answers kept per path.

    A path is resolved as its folder (resolved once per run, and shared by the thousands of
    inputs and outputs a large project keeps side by side) plus its last part, followed only
    when that part is a symlink: `realpath` walks the components left to right, so the answer
    is the one resolving the whole path gives, at one `lstat` per path instead of one per
    component."""

    __slots__ = ("_confined", "_folders", "_prefix", "root")

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._prefix = str(self.root).rstrip("/") + "/"
        self._confined: dict[str, tuple[Path | None, str | None]] = {}
        self._folders: dict[str, str] = {}

    def confine(self, relative: str) -> tuple[Path | None, str | None]:
        """As `confine(root, relative)`; the same `relative` is resolved once per run."""
        found = self._confined.get(relative)
        if found is None:
            # Compared as text (realpath's answer is normalised): one Path built per path.
            resolved = self.resolve(relative)
            if resolved != self._prefix[:-1] and not resolved.startswith(self._prefix):
                found = None, f"`{relative}` resolves to {resolved}, outside the project root"
            else:
                found = Path(resolved), None
            self._confined[relative] = found
        return found

    def resolve(self, relative: str) -> str:
        """`(root / relative).resolve()` as text (symlinks followed, `..` applied)."""
        folder, name = os.path.split(os.path.join(self.root, relative))
        if name in ("", ".", ".."):
            return os.path.realpath(os.path.join(folder, name))
        real_folder = self._folders.get(folder)
        if real_folder is None:
            real_folder = self._folders[folder] = os.path.realpath(folder)
        candidate = os.path.join(real_folder, name)
        return os.path.realpath(candidate) if os.path.islink(candidate) else candidate

    def shown(self, resolved: Path) -> str:
        """A resolved path as diagnostics name it: relative to the root where it is inside."""
        text = str(resolved)
        return text[len(self._prefix) :] if text.startswith(self._prefix) else text


def guess_mime(path: str) -> str | None:
    suffix = Path(path).suffix.lower()
    return _EXTRA_TYPES.get(suffix) or mimetypes.guess_type(path, strict=False)[0]


def resolve_media(
    root: Path, relative: str, declared_mime: str | None, location: SourceLocation
) -> MediaRef | Diagnostic:
    """Check a local media file named by a request part and describe it for apply's upload."""
    target, problem = confine(root, relative)
    if target is None:
        return Diagnostic(f"media file {problem}", location)
    if not target.is_file():
        return Diagnostic(
            f"media file `{relative}` does not exist (paths are relative to the project root)",
            location,
        )
    mime = declared_mime or guess_mime(relative)
    if mime is None or mime not in MEDIA_TYPES:
        return Diagnostic(
            f"media file `{relative}` has an unknown or unsupported type ({mime or 'unrecognised extension'})",
            location,
            hint="use an image, audio, video, PDF or text file, or set `mimeType`",
        )
    return MediaRef(
        path=relative, sha256=sha256_file(target), mime_type=mime, bytes=target.stat().st_size
    )
