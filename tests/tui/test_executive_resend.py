"""Re-sending failed executive deliveries from the Executive screen: `L` shows a dry-run
preview (no acknowledgement column: reports are not acknowledged), Cancel sends nothing,
Send delivers exactly the previewed pair once to a loopback webhook."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from textual.widgets import DataTable

from cavra_tui.bootstrap import Runtime
from cavra_tui.screens.forms.confirm_live import ConfirmLiveRun
from store.services.recovery import import_recovery_items
from store.services.reports import create_schedule_run
from tests.core.helpers import item
from tests.loopback import LoopbackHTTP, running_loopback
from tests.tui.conftest import make_app, settle
from workflows.delivery import deliver_report

CONFIG = """
[providers.exec-hook]
kind = "webhook"
url_env = "CAVRA_TEST_EXEC_URL"
audience = ["executive"]
timeout_s = 2

[retry]
base_delay_minutes = 0
allow_immediate = true
"""


@pytest.fixture
def server() -> Iterator[LoopbackHTTP]:
    with running_loopback() as state:
        yield state


@pytest.fixture
def failed_report(open_runtime: Callable[..., Runtime], server: LoopbackHTTP, clock: object,
                  monkeypatch: pytest.MonkeyPatch) -> tuple[Runtime, str]:
    monkeypatch.setenv("CAVRA_TEST_EXEC_URL", server.url())
    runtime = open_runtime(CONFIG)
    import_recovery_items(runtime.ctx, [item("rec-1", clock.now, 300)])  # type: ignore[attr-defined]
    run, _, _ = create_schedule_run(runtime.ctx)
    server.answer(503)
    [failed] = deliver_report(runtime.ctx, runtime.registry, run.run_id, ["exec-hook"])
    assert failed.status == "failed"
    server.requests.clear()
    return runtime, run.run_id


async def test_cancel_sends_nothing_and_send_delivers_the_previewed_pair(
        failed_report: tuple[Runtime, str], server: LoopbackHTTP) -> None:
    runtime, run_id = failed_report
    app = make_app(runtime)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        await settle(pilot)
        await pilot.press("L")
        await settle(pilot)
        confirm = app.screen
        assert isinstance(confirm, ConfirmLiveRun) and confirm.executive
        table = confirm.query_one("#preview-table", DataTable)
        assert [str(c.label) for c in table.columns.values()][:2] == ["Will", "Run/provider"]
        assert "Ack" not in [str(c.label) for c in table.columns.values()]
        [preview] = confirm.preview.dry_run.executions
        assert (preview.plan_id, preview.idempotency_key) == (
            run_id, f"cavra:{run_id}:exec-hook:2")
        await pilot.press("escape")
        await settle(pilot)
        assert server.requests == []

        await pilot.press("L")
        await settle(pilot)
        await pilot.click("#confirm-send")
        await settle(pilot)
    [request] = server.requests
    assert request.idempotency_key == preview.idempotency_key
