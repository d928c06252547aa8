"""Media uploads against the emulator: an upload still at the service is referenced again
(found by the project's display name, recorded or not), unless it expires before the job is
likely to run, when the content is uploaded again."""

from __future__ import annotations

from datetime import timedelta

from reconciler.apply.context import ApplyContext
from reconciler.apply.sources import release_media, upload_media
from reconciler.clock import FakeClock
from reconciler.state.document import MediaUpload
from tests.integration.apply.harness import Stages

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
SPEC = (
    "  model: gemini-2.5-flash\n  source:\n    requests:\n"
    "      - {key: a, request: {contents: [{parts: [{fileData: {path: images/cat.png,"
    " mimeType: image/png}}]}]}}\n"
    "  output: results/pets.jsonl\n"
)


def _upload(stages: Stages) -> MediaUpload:
    async def body(context: ApplyContext) -> MediaUpload:
        live = await context.adapter.snapshot(include_files=True)
        resource = context.resource("pets")
        release_media(context, await upload_media(context, live, resource))
        return context.media.uploads["images/cat.png"]

    return stages.run(body)


def test_a_media_upload_is_referenced_again_until_it_is_about_to_expire(stages: Stages) -> None:
    (stages.root / "images").mkdir()
    (stages.root / "images/cat.png").write_bytes(PNG)
    stages.manifest("pets", SPEC)

    first = _upload(stages)
    assert first.expires_at is not None

    stages.clock = FakeClock(first.expires_at - timedelta(hours=3))
    again = _upload(stages)
    stages.clock = FakeClock(first.expires_at - timedelta(minutes=30))
    renewed = _upload(stages)

    assert again.file_name == first.file_name  # found at the service, not uploaded twice
    assert renewed.file_name != first.file_name  # it would expire before the job runs
    assert renewed.sha256 == first.sha256
