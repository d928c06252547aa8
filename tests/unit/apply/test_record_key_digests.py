"""The key digests a record names are those of the source it was last brought to: a source with
none (a Cloud Storage or BigQuery source read in place) leaves the record naming none, not the
digests of an earlier, different source. An incremental re-run sizes itself from them, and a
request whose text is the earlier source's again would otherwise keep the answer of the source
in between."""

from __future__ import annotations

import dataclasses

from reconciler.apply.records import record_for
from reconciler.state.document import ResourceRecord
from tests.unit.plan.factories import resource


def test_a_source_without_key_digests_leaves_the_record_naming_none() -> None:
    first = resource("eval", content="v1")
    record = record_for(None, first, "d" * 64)
    assert record.key_digests_ref == "d" * 64

    remote = resource("eval", content="v2")
    remote = dataclasses.replace(remote, source=dataclasses.replace(remote.source, key_digests={}))
    moved = record_for(record, remote, None)

    assert moved.spec_hash == remote.spec_hash
    assert moved.key_digests_ref is None


def test_the_same_source_keeps_its_recorded_key_digests() -> None:
    current = resource("eval", content="v1")
    record = ResourceRecord(name="eval", spec_hash=current.spec_hash, key_digests_ref="d" * 64)
    assert record_for(record, current, "d" * 64).key_digests_ref == "d" * 64
