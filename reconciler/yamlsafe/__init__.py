"""Safe YAML with positions: every document of a file as plain data, each value located.

Shared by the project file (reconciler.config) and manifests (reconciler.manifests). It refuses
what plain-data files never need (object-constructing tags, duplicate keys, alias bombs, huge or
non-UTF-8 files) as located diagnostics, and never raises for bad input. It knows nothing of
what the documents mean: validation and its messages live in reconciler.diagnostics.

The package reads in the order of a read: `read` (size, encoding, cache) -> `depth` (checked on
the event stream first) -> `parsers` (libyaml's fast path, the careful pure-Python parser) ->
`convert` (nodes -> plain data, refusals) -> `document` (`YamlDocument`).
"""

from reconciler.yamlsafe.convert import MAX_ALIASES, MAX_NODES
from reconciler.yamlsafe.depth import MAX_YAML_DEPTH
from reconciler.yamlsafe.document import JsonPath, YamlDocument
from reconciler.yamlsafe.read import (
    CACHE_FORMAT,
    MAX_YAML_BYTES,
    DocumentCache,
    read_yaml_documents,
)

__all__ = [
    "CACHE_FORMAT",
    "MAX_ALIASES",
    "MAX_NODES",
    "MAX_YAML_BYTES",
    "MAX_YAML_DEPTH",
    "DocumentCache",
    "JsonPath",
    "YamlDocument",
    "read_yaml_documents",
]
