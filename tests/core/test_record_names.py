"""Ambiguous stored names get precise names in code (issue 9: ``run_id`` was a schedule run
on a delivery and a worker run on an execution record) without changing a byte of what is
stored, printed or sent: every record still dumps under the column names of its table,
which is what `--json`, the evidence digests and the SPEC's record tables use."""

from __future__ import annotations

from typing import Any

import pytest

from cavra_tui.cli_output import worker_json
from store.models import Delivery, ExecutionRecord, FailoverClaim, Record
from store.services.acknowledgements import acknowledge
from store.services.escalation import build_plan
from store.services.follow_up import FollowUpClaim
from store.services.listing import list_deliveries, list_executions
from store.tables import Base
from tests.core.helpers import WEBHOOK_CONFIG, hooked_runtime
from tests.loopback import LoopbackHTTP
from workflows.delivery import deliver_escalation
from workflows.worker import run_retry_worker

TABLES: list[tuple[type[Record], str, dict[str, str]]] = [
    (Delivery, "deliveries", {"schedule_run_id": "run_id", "sent_by_run_id": "worker_run_id"}),
    (ExecutionRecord, "execution_records", {"worker_run_id": "run_id"}),
    (FailoverClaim, "failover_claims", {"follow_up_run_id": "run_id"}),
    (FollowUpClaim, "follow_up_claims", {"follow_up_run_id": "run_id"}),
]


@pytest.mark.parametrize(("model", "table", "renamed"), TABLES,
                         ids=[table for _, table, _ in TABLES])
def test_each_record_dumps_under_its_tables_column_names(
        model: type[Record], table: str, renamed: dict[str, str]) -> None:
    columns = set(Base.metadata.tables[table].columns.keys())
    aliases = {name: field.alias or name for name, field in model.model_fields.items()}
    assert {name: aliases[name] for name in renamed} == renamed
    assert set(aliases.values()) <= columns, set(aliases.values()) - columns


@pytest.fixture
def retried(make_runtime: Any, write_config: Any, http_server: LoopbackHTTP, clock: Any,
            monkeypatch: pytest.MonkeyPatch) -> Any:
    """A pair that failed, was accepted, and was delivered by a live worker run."""
    runtime = hooked_runtime(make_runtime, write_config, http_server.url(), clock, monkeypatch,
                             WEBHOOK_CONFIG)
    plan = build_plan(runtime.ctx)
    http_server.answer(500)
    deliver_escalation(runtime.ctx, runtime.registry, plan.plan_id)
    acknowledge(runtime.ctx, plan.plan_id, "ops-webhook", "accepted")
    clock.advance(minutes=16)
    http_server.answer(200)
    result = run_retry_worker(runtime.ctx, runtime.registry, live=True)
    assert result.executions
    return runtime, result


def test_a_stored_delivery_and_execution_read_and_print_as_before(retried: Any) -> None:
    ctx = retried[0].ctx
    [delivery] = [d for d in list_deliveries(ctx, kind="escalation").items if d.sent_by_run_id]
    dumped = delivery.model_dump(mode="json")
    assert dumped["worker_run_id"] == delivery.sent_by_run_id
    assert "sent_by_run_id" not in dumped and "schedule_run_id" not in dumped
    assert Delivery.model_validate(dumped) == delivery  # read back by the stored names
    [execution] = [e for e in list_executions(ctx).items
                   if e.delivery_id == delivery.delivery_id]
    assert execution.worker_run_id == delivery.sent_by_run_id
    assert execution.model_dump(mode="json")["run_id"] == execution.worker_run_id


def test_a_worker_runs_json_names_the_fields_the_spec_lists(retried: Any) -> None:
    """SPEC §10: each execution of a worker run's `--json` has `execution_id`, `status`,
    `reason`, `provider`, `plan_id`, `retry_plan_id`, `run_id`, `delivery_id`."""
    _, result = retried
    printed = worker_json(result)
    [execution] = printed["executions"]
    spec = {"execution_id", "status", "reason", "provider", "plan_id", "retry_plan_id",
            "run_id", "delivery_id"}
    assert spec <= set(execution), spec - set(execution)
    assert execution["run_id"] == printed["run_id"] == result.run.run_id
