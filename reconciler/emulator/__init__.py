"""Local emulator of the Gemini Developer API's Files and Batches endpoints, and of Vertex AI's
batchPredictionJobs (backed by a Cloud Storage emulator).

Standalone: imports nothing from the rest of `reconciler` (an import-linter contract enforces
it), and shares only the wire protocol (shared/gemini-batch-protocol.md). The real google-genai
SDK talks to it with only `base_url` changed. Public surface:

    with running_emulator(tmp_path, job_seconds=0.2) as emu:
        client = genai.Client(api_key="test", http_options={"base_url": emu.base_url})
        emu.configure(rate_429=0.5)
        emu.calls()
"""

from reconciler.emulator.server import EmulatorHandle, build_server, running_emulator, serve
from reconciler.emulator.settings import EmulatorSettings

__all__ = ["EmulatorHandle", "EmulatorSettings", "build_server", "running_emulator", "serve"]
