"""The error boundary: SDK, httpx2 and validation failures -> ServiceError, with the key scrubbed.

No `google.genai.errors`, httpx2 or pydantic exception leaves live/ (STYLE §2, httpx's
`map_exceptions` pattern); messages never contain the API key. Also the predicates that say
which failures are worth retrying (gemini-batch-protocol.md §4).

It does not import google.genai: the requests the adapter sends itself raise `ErrorAnswer`,
read as the SDK reads an error answer, and the SDK's own `APIError` is recognised once the SDK
is loaded (`_answer`), so `plan`, which reads the service without the SDK (rest_reads.py),
never pays for importing it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Final, NoReturn, Protocol, cast

import httpx2
import pydantic

from reconciler.errors import PermanentServiceError, ServiceError, TransientServiceError

RETRYABLE_STATUS: Final = (408, 429, 500, 502, 503, 504)
"""The SDK's own default set (protocol §4): timeouts, quota, and server-side failures."""

CREATE_RESENDABLE_STATUS: Final = frozenset({408, 429, 503})
"""Answers that prove the create was not carried out: the request timed out before the server
read it (408), was refused for quota (429), or the service was unavailable (503). A 500/502/504
may come after the job was made, so those are ambiguous."""


UNREADABLE: Final = (
    pydantic.ValidationError,
    ValueError,
    KeyError,
    RecursionError,
    TypeError,
    AttributeError,
    IndexError,
)
"""What reading an answer raises when it is not what it should be: the SDK raises ValueError or
KeyError for answers it cannot use (an upload that never finalises, a missing upload URL, an
unparsable body), and its converters TypeError, AttributeError or IndexError where a field has
another shape (a list where an object belongs); JSON nested deeper than the parser's recursion
raises RecursionError wherever it is decoded."""


class Answer(Protocol):
    """An HTTP error answer as the SDK's `APIError` holds it (and `ErrorAnswer` alike)."""

    code: int
    status: str | None
    message: str | None
    details: object


class ErrorAnswer(Exception):
    """An error answer to a request the adapter sent itself, read exactly as the SDK reads one
    (`google.genai.errors.APIError`): the HTTP status as `code`, the body's `status` and
    `message` (top level, else under `error`), the whole body as `details`; the same text. So
    it is retried, classified and worded like the SDK's own calls' failures
    (tests/unit/live/test_error_answers.py holds the two together)."""

    def __init__(self, code: int, body: object) -> None:
        if isinstance(body, list) and len(body) == 1:
            body = body[0]
        self.code = code
        self.details = body
        self.message = _error_field(body, "message")
        self.status = _error_field(body, "status")
        super().__init__(f"{self.code} {self.status}. {self.details}")


def _error_field(body: object, name: str) -> str | None:
    """`body[name]`, else `body["error"][name]`, as the SDK reads them: None when either level
    is not an object, and the value as the body holds it (a string, unless the body is odd:
    only ever formatted into text)."""
    if not isinstance(body, Mapping):
        return None
    inner = body.get("error", {})
    if not isinstance(inner, Mapping):
        return None
    return cast(str | None, body.get(name, inner.get(name)))


def _answer(exc: BaseException) -> Answer | None:
    """`exc` as an error answer: ours, or the SDK's `APIError`. The SDK's class is looked up
    only where the SDK is loaded already: an instance of it cannot exist otherwise."""
    if isinstance(exc, ErrorAnswer):
        return exc
    sdk = sys.modules.get("google.genai.errors")
    if sdk is not None and isinstance(exc, sdk.APIError):
        return cast(Answer, exc)
    return None


HTTP_FAILURES: Final = (ErrorAnswer, httpx2.HTTPError)
"""An error answer to a request the adapter sent itself, or a request that failed on the way
(connection, timeout, protocol)."""


def mapped_failures(*also: type[BaseException]) -> tuple[type[BaseException], ...]:
    """Failures of a call that `Boundary.error` turns into a ServiceError (OSError aside), and
    `also`: the SDK's `APIError` among them once the SDK is loaded (an `except` clause
    evaluates this when an exception arrives, so the SDK's class is there whenever one of its
    calls could have raised it)."""
    sdk = sys.modules.get("google.genai.errors")
    answers: tuple[type[BaseException], ...] = () if sdk is None else (sdk.APIError,)
    return (*HTTP_FAILURES, *answers, *UNREADABLE, *also)


_REDACTED = "<redacted>"

RETRY_INFO_TYPE: Final = "type.googleapis.com/google.rpc.RetryInfo"
"""The `@type` of the error detail that says how long to wait before trying again."""

_ERRNO_NUMBER = re.compile(r"\[Errno (-?\d+)\]")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)s\s*$")


def status_of(exc: BaseException) -> int | None:
    answer = _answer(exc)
    return None if answer is None else answer.code


def is_answer(exc: BaseException) -> bool:
    """True when the service answered (an HTTP error status), not a broken connection."""
    return _answer(exc) is not None


def is_transient(exc: BaseException) -> bool:
    """What the SDK's own retry predicate accepts, plus resets (a dropped connection); not a
    host that cannot be reached at all (`unreachable`)."""
    answer = _answer(exc)
    if answer is not None:
        return answer.code in RETRYABLE_STATUS
    return isinstance(exc, httpx2.TransportError) and not unreachable(exc)


NO_ROUTE_ERRNOS: Final = frozenset(
    {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN}
)
"""What the operating system answers a connect with when nothing listens there or no route
leads there."""


def unreachable(exc: BaseException) -> bool:
    """True when no connection could be made because the host name did not resolve or the
    host refused it or could not be routed to: without a network (or with a wrong address)
    waiting a few seconds changes nothing, so these fail at once instead of after the whole
    backoff (about 20 s). A connect that timed out, a reset, a broken transfer and a 5xx stay
    transient."""
    if not isinstance(exc, httpx2.ConnectError):
        return False
    link: BaseException | None = exc
    while link is not None:
        if isinstance(link, socket.gaierror):
            return True
        if isinstance(link, OSError) and link.errno in NO_ROUTE_ERRNOS:
            return True
        link = link.__cause__ or link.__context__
    # httpcore may keep only the words, "[Errno 111] Connection refused"; a negative number
    # is getaddrinfo's (-2 no such name, -3 no answer from the resolver).
    found = _ERRNO_NUMBER.search(str(exc))
    number = int(found.group(1)) if found else 0
    return number < 0 or number in NO_ROUTE_ERRNOS


def retry_delay_of(exc: BaseException) -> float | None:
    """The wait the service asked for: `RetryInfo.retryDelay` of a google.rpc error's
    `details` (protobuf Duration JSON, e.g. "30s" or "1.5s"), in seconds; None when the error
    carries none (or an unreadable one)."""
    answer = _answer(exc)
    return None if answer is None else retry_delay_in(answer.details)


def retry_delay_in(body: object) -> float | None:
    """`retryDelay` from an error body, `{"error": {"details": [...]}}` or the inner status."""
    if not isinstance(body, Mapping):
        return None
    inner = body.get("error", body)
    details = inner.get("details") if isinstance(inner, Mapping) else None
    if not isinstance(details, list):
        return None
    for detail in details:
        if isinstance(detail, Mapping) and detail.get("@type") == RETRY_INFO_TYPE:
            return _duration_seconds(detail.get("retryDelay", detail.get("retry_delay")))
    return None


def _duration_seconds(value: object) -> float | None:
    """Seconds of a protobuf Duration in its JSON form ("2.5s") or as {seconds, nanos}."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        return float(match.group(1)) if match else None
    if isinstance(value, Mapping):
        seconds, nanos = value.get("seconds", 0), value.get("nanos", 0)
        try:
            return max(0.0, float(seconds) + float(nanos) / 1e9)
        except (TypeError, ValueError):
            return None
    return None


def create_resendable(exc: BaseException) -> bool:
    """True only when no job can have been created by the failed create request."""
    answer = _answer(exc)
    if answer is not None:
        return answer.code in CREATE_RESENDABLE_STATUS
    # No connection was made, so no request was sent.
    return isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout | httpx2.PoolTimeout)


def create_ambiguous(exc: BaseException) -> bool:
    """Whether a failed create may have made the job anyway: not when the service refused it
    (a 4xx other than 408/429) or the request never left."""
    status = status_of(exc)
    refused = status is not None and 400 <= status < 500 and status not in CREATE_RESENDABLE_STATUS
    return not refused and not create_resendable(exc)


async def raise_for_status(response: httpx2.Response) -> None:
    """Raise `ErrorAnswer` for an error answer to a request the adapter sent itself, as the SDK
    raises its `APIError`: for any status but 200, with the JSON body, or the text and reason
    when the body is not JSON."""
    if response.status_code == 200:
        return
    await response.aread()
    try:
        body = response.json()
    except json.JSONDecodeError:
        body = {"message": response.text, "status": response.reason_phrase}
    raise ErrorAnswer(response.status_code, body)


def malformed(call: str, what: str) -> NoReturn:
    raise PermanentServiceError(f"malformed answer: {what}", call=call)


NETWORK_HINT: Final = (
    "check the network and any proxy (HTTPS_PROXY), or use `--endpoint emulator` to try "
    "without the service"
)
_ERRNO = re.compile(r"^\[Errno -?\d+\]\s*")


def transport_failure(exc: httpx2.TransportError) -> str:
    """One line naming the host and the cause, e.g. `cannot reach generativelanguage.googleapis.com:
    connection refused (ConnectError)`; a failed name lookup says so."""
    try:
        host = exc.request.url.host or "the service"
    except RuntimeError:  # raised by httpx when the error carries no request
        host = "the service"
    name = type(exc).__name__
    if isinstance(exc, httpx2.TimeoutException):
        return f"{host} did not answer in time ({name})"
    if isinstance(exc, httpx2.RemoteProtocolError):
        # The host was reached and sent what is not HTTP (or hung up mid-answer); the parser's
        # words may quote the bytes it choked on, so they are cut short.
        return f"{host} sent a broken answer: {_shortened(_root_cause(exc))} ({name})"
    return f"cannot reach {host}: {_root_cause(exc)} ({name})"


def _shortened(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _root_cause(exc: BaseException) -> str:
    """The operating system's words for the deepest OSError in the chain (async connects wrap
    `connection refused` in "All connection attempts failed"), else the exception's own."""
    text = _ERRNO.sub("", str(exc)).strip()
    link: BaseException | None = exc
    while link is not None:
        if isinstance(link, socket.gaierror):
            return f"name lookup failed ({link.strerror or text})".lower()
        if isinstance(link, OSError) and link.errno is not None and link.errno > 0:
            text = os.strerror(link.errno)
        link = link.__cause__ or link.__context__
    return (text[:1].lower() + text[1:]) if text else "connection failed"


class Boundary:
    """Turns SDK, httpx2 and validation failures into ServiceErrors with the key scrubbed."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self._secrets = tuple(s for s in secrets if s)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        return text

    def error(
        self,
        exc: BaseException,
        call: str,
        *,
        ambiguous: bool = False,
        resource: str | None = None,
    ) -> ServiceError:
        """The ServiceError for `exc` raised by `call` (a name like "batches.create")."""
        if isinstance(exc, ServiceError):
            return self.scrubbed(exc)
        answer = _answer(exc)
        if answer is not None:
            detail = answer.message or answer.status or ""
            status = f" {answer.status}" if answer.status else ""
            message = self.redact(f"HTTP {answer.code}{status}: {detail}".rstrip(": "))
            if answer.code in RETRYABLE_STATUS:
                return TransientServiceError(
                    message,
                    call=call,
                    resource=resource,
                    status_code=answer.code,
                    ambiguous=ambiguous,
                )
            return PermanentServiceError(
                message, call=call, resource=resource, status_code=answer.code
            )
        if isinstance(exc, httpx2.TransportError):
            return TransientServiceError(
                self.redact(transport_failure(exc)),
                call=call,
                resource=resource,
                hint=NETWORK_HINT,
                ambiguous=ambiguous,
            )
        if isinstance(exc, UNREADABLE):
            words = (
                "JSON nested too deeply"
                if isinstance(exc, RecursionError)
                else _shortened(" ".join(f"{type(exc).__name__}: {exc}".split()), 400)
            )
            message = self.redact(f"malformed answer: {words}")
            if ambiguous:
                return TransientServiceError(message, call=call, resource=resource, ambiguous=True)
            return PermanentServiceError(message, call=call, resource=resource)
        if isinstance(exc, OSError):
            return PermanentServiceError(
                self.redact(f"local I/O failed: {exc}"), call=call, resource=resource
            )
        return PermanentServiceError(
            self.redact(f"unexpected failure: {type(exc).__name__}: {exc}"),
            call=call,
            resource=resource,
        )

    def scrubbed(self, exc: ServiceError) -> ServiceError:
        """`exc`, raised inside a call (`malformed` words what an answer held), with the
        secrets out of its message."""
        message = self.redact(exc.message)
        if message != exc.message:
            exc.message = message
            exc.args = (message,)
        return exc

    @contextlib.contextmanager
    def mapping(self, call: str) -> Iterator[None]:
        try:
            yield
        except ServiceError as exc:
            self.scrubbed(exc)
            raise
        except mapped_failures(OSError) as exc:
            raise self.error(exc, call) from exc

    @contextlib.contextmanager
    def made_anyway(self, call: str) -> Iterator[None]:
        """Around reading the job a create's success answer holds: an unreadable one means the
        job was most likely made, so the failure is ambiguous (look it up by its tag before
        creating it again), not a refusal."""
        try:
            yield
        except PermanentServiceError as exc:
            raise TransientServiceError(
                self.redact(exc.message), call=call, ambiguous=True
            ) from exc
