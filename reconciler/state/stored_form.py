"""A record <-> its stored form: the line a reviewer reads, and the blob of what is rarely read.

A settled resource's record in memory holds its applied spec (and its hash), its uploaded input
and the address of its key digests; a reviewer of the committed state reads none of these in a
diff, so format 6 stores them (`DETAIL_FIELDS`) in one content-addressed blob (kind `applied`)
beside the state, and the record's line keeps only its address (`applied`): a new spec shows
as a new address. The line keeps what a reviewer reads: job names, states, times, result
locations, counts and cost. Backends load every record's blob when they read (the state in
memory is whole, so the planner and apply read it as before) and store it with the record.

The line also leaves out what decoding can derive again, each rule written once in `_RULES`
(a value is left out only when it equals what its rule derives, else it is spelled out, null
included): the attempt's spec hash where it is the record's, the tag's standard form (only the
project token is kept), `updated_at` equal to `ended_at`, `created_at` in the same second as
`intent_at`, the output file the Developer API names after a file job, the input file and
request count of a whole-source attempt, `collected_at` of the collected attempts, the
endpoint `gemini`, the usage's model where it is the record's, and the results'
`from_attempts` when they come from the newest attempt. Times are stored to the second (UTC,
`Z`): nothing reads a finer one (the results check allows seconds of clock slack), and it made
every timestamp 7 characters longer.

Decoding accepts the details spelled out in the record as well (format 5 and older, migrated,
and `state pull`'s self-contained form), so old states load and are rewritten on the next write.
Pure: blobs are fetched by the caller's `BlobSource`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from reconciler.state.document import InputRecord, JobAttempt, ResourceRecord
from reconciler.state.migrations import StateFormatError

DETAILS_BLOB = "applied"
"""The blob kind of a record's details (`DETAIL_FIELDS`)."""
DETAIL_FIELDS = ("spec_hash", "replacing", "in_place", "input", "key_digests_ref")
"""The record fields stored in its details blob rather than on its line."""
REF_FIELD = "applied"
"""The stored record's field holding its details blob's address."""

BlobSource = Callable[[Collection[str]], Mapping[str, bytes]]
"""Given details blob addresses, the data of those that exist (missing ones left out)."""

_TIMES = (
    "intent_at",
    "created_at",
    "updated_at",
    "ended_at",
    "collected_at",
    "input_deleted_at",
    "output_deleted_at",
)
_TOKEN = re.compile(r"^[0-9a-f]{8}$")
_TAG_TOKEN = re.compile(r"^\[rc:([0-9a-f]{8})/")
_JOBS_PREFIX = "batches/"
_OUTPUT_PREFIX = "files/batch-"


@dataclass(frozen=True, slots=True)
class Blob:
    """One content-addressed blob to store: its kind (a plain name), sha256 and bytes."""

    kind: str
    sha256: str
    data: bytes


def no_blobs(_addresses: Collection[str]) -> Mapping[str, bytes]:
    """A `BlobSource` for documents that must be self-contained."""
    return {}


def stamp(value: datetime) -> str:
    """A time as stored: to the second, UTC with `Z` (naive times as they are)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    text = value.replace(microsecond=0, tzinfo=None).isoformat()
    return text + "Z" if value.tzinfo is not None else text


def _second(value: datetime | None) -> datetime | None:
    """`value` as decoding will read it back (the stored precision)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.replace(microsecond=0)


def standard_tag(
    token: str, resource: str, spec_hash: str, attempt: Any, shard: Any, rerun: Any
) -> str:
    """The identity tag apply writes (live.tags' format, which state may not import; a test
    pins that the two agree)."""
    part = f".s{shard}" if shard is not None else ""
    if shard is not None and rerun:
        part += f"r{rerun}"
    return f"[rc:{token}/{resource}@{spec_hash[:12]}:{attempt}{part}]"


# -- encoding ---------------------------------------------------------------------------------


def stored_form(record: ResourceRecord) -> tuple[dict[str, Any], Blob | None]:
    """The record as its line stores it (without its name), and its details blob if it has
    details (None: all of them at their defaults)."""
    dumped = record.model_dump(mode="json", exclude_defaults=True, exclude={"name", "attempts"})
    details = {name: dumped.pop(name) for name in DETAIL_FIELDS if name in dumped}
    blob = None
    if details:
        if record.input is not None:
            details["input"] = _input_form(record.input)
        data = msgspec.json.encode(details, order="sorted")
        blob = Blob(DETAILS_BLOB, hashlib.sha256(data).hexdigest(), data)
        dumped[REF_FIELD] = blob.sha256
    if record.results is not None:
        results = dumped["results"]
        results["collected_at"] = stamp(record.results.collected_at)
        if list(record.results.from_attempts) == _newest(record.attempts):
            results.pop("from_attempts", None)
        else:
            results["from_attempts"] = list(record.results.from_attempts)
    if record.attempts:
        facts = _Facts.of_record(record)
        dumped["attempts"] = [_attempt_form(record, facts, a) for a in record.attempts]
    return dumped, blob


def _newest(attempts: Any) -> list[int]:
    """What `results.from_attempts` is left out as: the newest attempt (the usual collection)."""
    numbers = [
        a.number if isinstance(a, JobAttempt) else a.get("number")
        for a in attempts
        if isinstance(a, JobAttempt | dict)
    ]
    valid = [n for n in numbers if isinstance(n, int) and not isinstance(n, bool)]
    return [max(valid)] if valid else []


def _input_form(source: InputRecord) -> dict[str, Any]:
    form = source.model_dump(mode="json", exclude_defaults=True)
    for name in ("uploaded_at", "expires_at"):
        value = getattr(source, name)
        if value is not None:
            form[name] = stamp(value)
    return form


def _attempt_form(record: ResourceRecord, facts: _Facts, attempt: JobAttempt) -> dict[str, Any]:
    form = attempt.model_dump(mode="json", exclude_defaults=True)
    for name in _TIMES:
        value = getattr(attempt, name)
        if value is not None:
            form[name] = stamp(value)
    if attempt.spec_hash == record.spec_hash:
        del form["spec_hash"]
    match = _TAG_TOKEN.match(attempt.tag)
    if match and attempt.tag == standard_tag(
        match.group(1), record.name, attempt.spec_hash, attempt.number, attempt.shard, attempt.rerun
    ):
        form["tag"] = match.group(1)
    for name, rule in _RULES.items():
        actual = getattr(attempt, name)
        if isinstance(actual, datetime):
            actual = _second(actual)
        if actual == rule(facts, attempt):
            form.pop(name, None)
        else:
            form[name] = stamp(actual) if isinstance(actual, datetime) else _json(actual)
    if attempt.usage is not None and attempt.usage.model == facts.model:
        form["usage"].pop("model", None)
    elif attempt.usage is not None and attempt.usage.model is None and facts.model is not None:
        form["usage"]["model"] = None
    return form


def _json(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


# -- derivation rules -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the rules read of the record, in memory (encoding) or as parsed JSON (decoding)."""

    input_file: str | None
    requests: int | None
    inline: bool
    """The source went inline (its jobs' results come back inline, not as a file)."""
    collected_at: datetime | str | None
    collected: Collection[int]
    model: str | None

    @classmethod
    def of_record(cls, record: ResourceRecord) -> _Facts:
        results = record.results
        return cls(
            input_file=record.input.file_name if record.input is not None else None,
            requests=_requests(record.replacing),
            inline=_inline(record.replacing),
            collected_at=_second(results.collected_at) if results is not None else None,
            collected=results.from_attempts if results is not None else (),
            model=_model(record.replacing),
        )

    @classmethod
    def of_raw(cls, record: Mapping[str, Any]) -> _Facts:
        source = record.get("input")
        results = record.get("results")
        replacing = record.get("replacing")
        replacing = replacing if isinstance(replacing, dict) else {}
        if not isinstance(results, dict):
            results = {}
        collected = results.get("from_attempts", ())
        return cls(
            input_file=source.get("file_name") if isinstance(source, dict) else None,
            requests=_requests(replacing),
            inline=_inline(replacing),
            collected_at=results.get("collected_at"),
            collected=collected if isinstance(collected, list) else (),
            model=_model(replacing),
        )


def _requests(replacing: Mapping[str, Any]) -> int | None:
    source = replacing.get("source")
    count = source.get("requests") if isinstance(source, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def _inline(replacing: Mapping[str, Any]) -> bool:
    source = replacing.get("source")
    return isinstance(source, dict) and source.get("inline") is True


def _model(replacing: Mapping[str, Any]) -> str | None:
    model = replacing.get("model")
    return model if isinstance(model, str) else None


def _get(attempt: JobAttempt | Mapping[str, Any], name: str) -> Any:
    if isinstance(attempt, JobAttempt):
        value = getattr(attempt, name)
        if isinstance(value, datetime):
            return _second(value)
        return value.value if hasattr(value, "value") else value
    return attempt.get(name)


def _whole(attempt: JobAttempt | Mapping[str, Any]) -> bool:
    return _get(attempt, "shard") is None


_Rule = Callable[[_Facts, Any], Any]


def _created(facts: _Facts, attempt: Any) -> Any:
    return _get(attempt, "intent_at") if _get(attempt, "job_name") is not None else None


def _output(facts: _Facts, attempt: Any) -> Any:
    job = _get(attempt, "job_name")
    if not facts.inline and isinstance(job, str) and job.startswith(_JOBS_PREFIX):
        return _OUTPUT_PREFIX + job.removeprefix(_JOBS_PREFIX)
    return None


def _input_file(facts: _Facts, attempt: Any) -> Any:
    return facts.input_file if _whole(attempt) else None


def _request_count(facts: _Facts, attempt: Any) -> Any:
    purpose = _get(attempt, "purpose")
    return facts.requests if _whole(attempt) and purpose in (None, "full") else None


def _collected_at(facts: _Facts, attempt: Any) -> Any:
    number = _get(attempt, "number")
    return facts.collected_at if number in facts.collected else None


_RULES: Mapping[str, _Rule] = {
    "updated_at": lambda facts, attempt: _get(attempt, "ended_at"),
    "created_at": _created,
    "output_file": _output,
    "input_file": _input_file,
    "request_count": _request_count,
    "collected_at": _collected_at,
    "endpoint": lambda facts, attempt: "gemini",
}
"""Per attempt field left out when equal to what its rule derives from the record and the
attempt's other (never derived) fields. Each rule reads both forms: in memory and parsed."""


# -- decoding ---------------------------------------------------------------------------------


def expand_records(resources: dict[str, Any], *, source: str, blobs: BlobSource) -> None:
    """Bring every stored record of `resources` (in place) back to the full form the document
    model validates: its name, its details from their blob, its derived attempt fields.

    Raises:
        StateFormatError: a record's details blob is missing or unreadable, a record both
            refers to a blob and spells out its details, or names itself other than its key.
    """
    wanted = {
        record[REF_FIELD]
        for record in resources.values()
        if isinstance(record, dict) and isinstance(record.get(REF_FIELD), str)
    }
    found = blobs(wanted) if wanted else {}
    for key, record in resources.items():
        if not isinstance(record, dict):
            continue  # validation names it
        named = record.setdefault("name", key)
        if named != key:
            raise StateFormatError(
                f"{source} is corrupt: record `{key}` names itself `{named}`; a record's key "
                "and name must agree",
                hint="restore the state from its backup or version control, or fix the name",
            )
        if REF_FIELD in record:
            _inflate(key, record, found, source=source)
        _expand_attempts(key, record)


def _inflate(key: str, record: dict[str, Any], found: Mapping[str, bytes], *, source: str) -> None:
    ref = record.pop(REF_FIELD)
    where = f"{source}: record `{key}`"
    if not isinstance(ref, str) or ref not in found:
        raise StateFormatError(
            f"{where} keeps its applied spec and input in blob {DETAILS_BLOB}/{ref}, which is "
            "missing",
            hint="the state's blobs are part of it: restore the missing blob from version "
            "control or a backup (commit the `blobs/` directory with the state file), or run "
            f"`reconciler state rm {key}` and `reconciler import` the resource's job again",
        )
    spelled = [name for name in DETAIL_FIELDS if name in record]
    if spelled:
        raise StateFormatError(
            f"{source} is corrupt: record `{key}` both refers to a details blob and spells out "
            f"`{spelled[0]}`"
        )
    try:
        details = msgspec.json.decode(found[ref])
    except msgspec.DecodeError:
        details = None
    if not isinstance(details, dict) or not set(details) <= set(DETAIL_FIELDS):
        raise StateFormatError(
            f"{where}: blob {DETAILS_BLOB}/{ref} is not a record's details",
            hint="restore the blob from version control or a backup",
        )
    record.update(details)


def _expand_attempts(key: str, record: dict[str, Any]) -> None:
    attempts = record.get("attempts")
    results = record.get("results")
    if isinstance(results, dict) and "from_attempts" not in results:
        results["from_attempts"] = _newest(attempts if isinstance(attempts, list) else [])
    if not isinstance(attempts, list):
        return
    facts = _Facts.of_raw(record)
    spec_hash = record.get("spec_hash")
    for attempt in attempts:
        if not isinstance(attempt, dict):
            continue  # validation names it
        if spec_hash is not None:
            attempt.setdefault("spec_hash", spec_hash)
        for name, rule in _RULES.items():
            if name not in attempt:
                derived = rule(facts, attempt)
                if derived is not None:
                    attempt[name] = derived
        tag = attempt.get("tag")
        if isinstance(tag, str) and _TOKEN.fullmatch(tag) and isinstance(attempt["spec_hash"], str):
            attempt["tag"] = standard_tag(
                tag,
                key,
                attempt["spec_hash"],
                attempt.get("number"),
                attempt.get("shard"),
                attempt.get("rerun", 0),
            )
        usage = attempt.get("usage")
        if isinstance(usage, dict) and "model" not in usage and facts.model is not None:
            usage["model"] = facts.model
