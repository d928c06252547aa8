"""live/client.py: the SDK's `BatchJob` model is built with the client, once per process.

The SDK builds its types on first use. A job listing answered before any job model was built
built `BatchJob` and its nested types twice (inline in the page's model, then on its own): apply
lists before it creates, so it paid ~55 ms of CPU more than a script that creates first.
"""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_job_model_is_built_with_the_client_so_the_first_listing_reuses_it() -> None:
    # A fresh interpreter: other tests here have built the SDK's models already.
    code = (
        "import json\n"
        "from google.genai import types\n"
        "from reconciler.live.endpoint import Endpoint, EndpointKind\n"
        "from reconciler.live.gemini import AdapterSettings, build_client\n"
        "before = types.BatchJob.__pydantic_complete__\n"
        "build_client(Endpoint(EndpointKind.URL, 'http://service.test', 'k', 'v1beta'),"
        " AdapterSettings())\n"
        "print(json.dumps([before, types.BatchJob.__pydantic_complete__,"
        " types.ListBatchJobsResponse.__pydantic_complete__]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # Unbuilt before (the SDK defers), built by the client; the listing's model is left to
    # its first use, which then finds `BatchJob` built.
    assert json.loads(done.stdout) == [False, True, False]
