"""Acknowledgements (SPEC §5.3): the latest one for a (plan, provider) pair counts."""

from __future__ import annotations

from sqlalchemy import select

from store.errors import NotFound, UserError
from store.ids import new_id
from store.models import ACK_ANSWERED, ACK_SETTLED, ACK_STATES, Acknowledgement
from store.services.context import StoreContext
from store.services.deliveries import pair_state, set_ack_pending
from store.services.escalation import resolve_plan_id, track_plan_pair
from store.tables import AcknowledgementRow, DeliveryRow
from store.text import check_text

MAX_REF = 255
MAX_NOTES = 4000


def validate_ack_input(state: str, external_ref: str | None, notes: str | None) -> None:
    if state not in ACK_STATES:
        raise UserError(f"unknown acknowledgement state {state!r}; use one of "
                        f"{', '.join(ACK_STATES)}")
    if external_ref is not None and len(external_ref) > MAX_REF:
        raise UserError(f"--ref is longer than {MAX_REF} characters")
    if notes is not None and len(notes) > MAX_NOTES:
        raise UserError(f"--notes is longer than {MAX_NOTES} characters")
    if external_ref is not None:
        check_text(external_ref, "--ref")
    if notes is not None:
        check_text(notes, "--notes", prose=True)


def acknowledge(ctx: StoreContext, plan_id: str, provider: str, state: str,
                external_ref: str | None = None, notes: str | None = None) -> Acknowledgement:
    validate_ack_input(state, external_ref, notes)
    now = ctx.clock()
    with ctx.db.read() as session:
        plan_id = resolve_plan_id(session, plan_id)
        delivered_to = session.execute(select(DeliveryRow.delivery_id).where(
            DeliveryRow.plan_id == plan_id, DeliveryRow.provider == provider,
            DeliveryRow.kind == "escalation").limit(1)).scalar_one_or_none()
    if delivered_to is None:
        raise NotFound(f"plan {plan_id} was not delivered to provider {provider!r}; "
                       "acknowledge a provider the plan was delivered to")
    decision = ctx.require("escalation.ack", [plan_id])
    with ctx.write() as session:
        row = AcknowledgementRow(
            ack_id=new_id("ack"), plan_id=plan_id, provider=provider, state=state,
            acknowledged_by=ctx.identity.actor, external_ref=external_ref or None,
            notes=notes or None, created_at=now, created_by=ctx.identity.actor)
        session.add(row)
        pair = pair_state(session, plan_id, provider, now)
        pair.latest_ack_id = row.ack_id
        pair.latest_ack_state = state
        pair.latest_ack_by = ctx.identity.actor
        if state == "accepted":
            pair.accepted_by = ctx.identity.actor
        pair.updated_at = now
        set_ack_pending(session, pair, state not in ACK_ANSWERED)
        track_plan_pair(session, plan_id, provider, settled=state in ACK_SETTLED)
        session.flush()
        ack = Acknowledgement.model_validate(row)
        # The evidence digest covers the public fields only: notes stay private.
        ctx.audit(session, "escalation.ack", decision, [ack.ack_id, plan_id],
                  f"{provider}: {state}", ack.model_dump(mode="json"))
    return ack
