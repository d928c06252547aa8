"""The app's own behaviour, served for real on 127.0.0.1 over sources made of plain values:
a state that cannot be read is one line on an error page, and the overview reloads itself
only while jobs move."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from reconciler.errors import StateError
from reconciler.plan.cost import default_price_table
from reconciler.state.document import JobState
from reconciler.ui.app import UiSources, create_app
from reconciler.ui.pages import overview_page
from reconciler.ui.server import running_ui
from reconciler.ui.views import Snapshot
from tests.unit.plan.factories import attempt, desired, job, live, record, resource, state


def test_a_state_that_cannot_be_read_is_an_error_page_not_a_traceback(tmp_path: Path) -> None:
    def unreadable(with_live: bool) -> Snapshot:
        raise StateError("state/reconciler.state.json is not valid JSON")

    app = create_app(UiSources(tmp_path, "p", unreadable))
    with running_ui(app) as url:
        try:
            urllib.request.urlopen(url + "/", timeout=10)
        except urllib.error.HTTPError as error:
            status, body = error.code, error.read().decode()
    assert status == 500
    assert "is not valid JSON" in body and "Traceback" not in body


def test_the_overview_reloads_itself_only_while_a_job_is_moving() -> None:
    res = resource()
    running = attempt(res, state=JobState.RUNNING)
    moving = Snapshot(
        desired(res), state(record(res, running)), live(job(running)), None, default_price_table()
    )
    settled = Snapshot(desired(res), state(), live(), None, default_price_table())
    assert 'data-refresh="10"' in overview_page(moving, "p")
    assert 'data-refresh="0"' in overview_page(settled, "p")
