"""Someone who can write the database file attacks the audit trail; each attack passed
`cavra audit verify` before checkpoints and record digests, and each is caught now, naming
the witnessed seq or the record it touched (SPEC §9).

The attacker uses cavra's own hashing code to recompute the chain: the algorithm is public,
so only what lives outside the database (a witness, a key) can catch that."""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.core.audit_attacker import (
    drop_all_triggers,
    forget_local_checkpoints,
    head,
    recompute_chain,
    renumber,
    restore_triggers,
    sql,
)
from tests.core.helpers import run_cli
from tests.loopback import LoopbackHTTP

KEY = "CAVRA_TEST_AUDIT_KEY"


@dataclass
class Witnessed:
    db: Path
    witness: Path
    args: list[str]
    capsys: pytest.CaptureFixture[str]

    def cli(self, *args: str) -> tuple[int, str, str]:
        return run_cli(self.capsys, *self.args, *args)

    def ok(self, *args: str) -> str:
        code, out, err = self.cli(*args)
        assert code == 0, err
        return out

    def verify(self) -> tuple[int, str, str]:
        return self.cli("audit", "verify", "--witness", str(self.witness))


@pytest.fixture
def witnessed(tmp_path: Path, http_server: LoopbackHTTP, monkeypatch: pytest.MonkeyPatch,
              capsys: pytest.CaptureFixture[str]) -> Witnessed:
    """A loop with a failed webhook delivery, an outbox delivery and an ack, checkpointed
    twice to a witness file that lives outside the database's folder."""
    monkeypatch.setenv(KEY, "a witness key that never enters the database")
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL", http_server.url())
    http_server.answer(500)
    (tmp_path / "db").mkdir()
    witness = tmp_path / "witness" / "audit.jsonl"
    config = tmp_path / "cavra.toml"
    config.write_text(f"""
[providers.ops-webhook]
kind = "webhook"
url_env = "CAVRA_TEST_HOOK_URL"
timeout_s = 2

[providers.audit-witness]
kind = "outbox"
path = "{witness}"
audience = ["audit"]

[routing]
critical = ["ops-webhook", "outbox"]
warning = ["outbox"]

[audit]
key_env = "{KEY}"
""")
    items = tmp_path / "items.json"
    items.write_text(json.dumps([{"recovery_id": "rec-1", "connector": "payments-api",
                                  "category": "rollback", "opened_at": "2026-01-01T00:00:00Z"}]))
    state = Witnessed(db=tmp_path / "db" / "cavra.db", witness=witness, capsys=capsys,
                      args=["--db", f"sqlite:///{tmp_path / 'db' / 'cavra.db'}",
                            "--config", str(config)])
    state.ok("recovery", "import", str(items))
    plan = json.loads(state.ok("--json", "escalation", "plan"))["plan_id"]
    state.ok("escalation", "deliver", plan)
    state.ok("audit", "checkpoint")
    state.ok("escalation", "ack", plan, "--provider", "outbox", "--state", "accepted")
    state.ok("retry", "plan")
    state.ok("audit", "checkpoint")
    code, out, err = state.verify()
    assert code == 0, err
    assert "witnesses agree: 2 checkpoints" in out
    return state


def _witnessed_seqs(witness: Path) -> list[int]:
    return [json.loads(line)["message"]["seq"] for line in witness.read_text().splitlines()]


def test_the_witness_holds_signed_checkpoints_of_the_real_head(witnessed: Witnessed) -> None:
    lines = [json.loads(line) for line in witnessed.witness.read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["checkpoint", "checkpoint"]
    latest = lines[-1]["message"]
    conn = sqlite3.connect(witnessed.db)
    seq, sha = conn.execute("SELECT seq, sha256 FROM audit_head").fetchone()
    event_sha = conn.execute("SELECT sha256 FROM audit_events WHERE seq = ?", (seq,)).fetchone()
    conn.close()
    assert (latest["seq"], latest["head_sha256"]) == (seq, sha) == (seq, event_sha[0])
    assert latest["method"] == "hmac" and latest["signature"].startswith("hmac-sha256:")
    assert "never enters" not in witnessed.db.read_bytes().decode("latin-1")


def test_an_edited_and_recomputed_chain_is_caught(witnessed: Witnessed) -> None:
    first = _witnessed_seqs(witnessed.witness)[0]
    saved = drop_all_triggers(witnessed.db)
    sql(witnessed.db, "UPDATE audit_events SET detail = 'nothing happened' WHERE seq = 2")
    restore_triggers(witnessed.db, saved)
    recompute_chain(witnessed.db)
    code, _, err = witnessed.cli("audit", "verify")
    assert code == 3 and "(local audit_checkpoints)" in err  # the database's own copies
    forget_local_checkpoints(witnessed.db)
    code, out, err = witnessed.cli("audit", "verify")  # now the database alone cannot tell
    assert code == 0, err
    assert "audit chain intact" in out
    code, _, err = witnessed.verify()
    assert code == 3
    assert f"witnessed seq {first} has another hash" in err


def test_a_deleted_tail_with_the_head_reset_is_caught(witnessed: Witnessed) -> None:
    last = _witnessed_seqs(witnessed.witness)[-1]
    drop_all_triggers(witnessed.db)
    sql(witnessed.db, f"DELETE FROM audit_events WHERE seq > {last - 2}",
        f"DELETE FROM audit_targets WHERE seq > {last - 2}")
    recompute_chain(witnessed.db)
    assert head(witnessed.db)[0] == last - 2
    code, _, err = witnessed.verify()
    assert code == 3
    assert f"seq {last}" in err and "shorter than witnessed" in err


def test_a_database_rolled_back_to_an_older_copy_is_caught(witnessed: Witnessed,
                                                          tmp_path: Path) -> None:
    backup = tmp_path / "backup.db"
    shutil.copy(witnessed.db, backup)  # the older copy (WAL is checkpointed on close)
    witnessed.ok("retry", "plan")
    witnessed.ok("audit", "checkpoint")
    shutil.copy(backup, witnessed.db)
    for suffix in ("-wal", "-shm"):
        Path(f"{witnessed.db}{suffix}").unlink(missing_ok=True)
    code, out, err = witnessed.cli("audit", "verify")
    assert code == 0, err  # the old copy is a perfectly good chain on its own
    code, _, err = witnessed.verify()
    assert code == 3
    assert f"seq {_witnessed_seqs(witnessed.witness)[-1]}" in err
    assert "rolled back" in err


def test_a_middle_deletion_with_renumbering_is_caught(witnessed: Witnessed) -> None:
    first = _witnessed_seqs(witnessed.witness)[0]
    drop_all_triggers(witnessed.db)
    sql(witnessed.db, "DELETE FROM audit_events WHERE seq = 2",
        "DELETE FROM audit_targets WHERE seq = 2")
    renumber(witnessed.db)
    recompute_chain(witnessed.db)
    code, _, err = witnessed.verify()
    assert code == 3
    assert f"witnessed seq {first} has another hash" in err


def _forge_event(db: Path, *, records: str | None, target: str) -> int:
    """Append an allow event that links correctly to the head, the way cavra would."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from store.audit import _event_digest, _hashable
    from store.tables import AuditEventRow

    seq, prev = head(db)
    engine = create_engine(f"sqlite:///{db}")
    with Session(engine) as session, session.begin():
        last = session.get(AuditEventRow, seq)
        assert last is not None
        row = AuditEventRow(seq=seq + 1, at=last.at, actor=last.actor, role=last.role,
                            action="escalation.ack", target_ids=[target],
                            policy_rule="escalation.ack requires operator or release_manager",
                            decision="allow", detail="outbox: accepted",
                            evidence_sha256="0" * 64, prev_sha256=prev, sha256="",
                            records=json.loads(records) if records else None)
        row.sha256 = _event_digest(_hashable(row))
        session.add(row)
        sha = row.sha256
    engine.dispose()
    sql(db, "UPDATE audit_head SET seq = ?, sha256 = ? WHERE id = 1", params=(seq + 1, sha))
    return seq + 1


@pytest.mark.parametrize("records", [None, '{"ack-f0f0f0f0f0": "' + "1" * 64 + '"}'],
                         ids=["without-digests", "vouching-for-a-missing-ack"])
def test_a_forged_acknowledgement_event_is_caught(witnessed: Witnessed,
                                                  records: str | None) -> None:
    forged = _forge_event(witnessed.db, records=records, target="ack-f0f0f0f0f0")
    code, out, err = witnessed.cli("audit", "verify")
    assert "audit chain intact" in out  # it links: the chain walk alone passes it
    assert code == 3
    assert f"seq {forged}" in err
    assert ("carries no record digests" in err if records is None
            else "ack-f0f0f0f0f0, which is missing" in err)


def test_dropped_triggers_and_a_rewritten_delivery_are_caught(witnessed: Witnessed) -> None:
    conn = sqlite3.connect(witnessed.db)
    [delivery] = conn.execute("SELECT delivery_id FROM deliveries WHERE status = 'failed'")
    conn.close()
    drop_all_triggers(witnessed.db)
    sql(witnessed.db, "UPDATE deliveries SET status = 'delivered', status_code = 200, "
        "error = NULL WHERE delivery_id = ?", params=(delivery[0],))
    code, out, err = witnessed.verify()
    assert code == 3
    assert "audit chain intact" in out and "witnesses agree" in out
    assert f"{delivery[0]} (deliveries) differs from what audit event seq" in out + err
    assert "trigger deliveries_no_delete is missing" in out


def test_nothing_tampered_verifies_with_every_check(witnessed: Witnessed) -> None:
    code, out, err = witnessed.verify()
    assert code == 0, err
    assert "evidence matches the audit chain" in out
    assert "append-only protection missing" not in out


def test_opening_a_database_without_its_triggers_says_so(witnessed: Witnessed) -> None:
    drop_all_triggers(witnessed.db)
    code, _, err = witnessed.cli("metrics")
    assert code == 0
    assert err.startswith("cavra: warning: append-only protection missing: trigger ")
    assert len(err.splitlines()) == 1


def test_a_webhook_witness_receives_checkpoints_that_verify_as_an_exported_list(
        tmp_path: Path, http_server: LoopbackHTTP, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(KEY, "webhook witness key")
    monkeypatch.setenv("CAVRA_TEST_WITNESS_URL", http_server.url("/witness"))
    config = tmp_path / "cavra.toml"
    config.write_text(f'[providers.remote-witness]\nkind = "webhook"\n'
                      f'url_env = "CAVRA_TEST_WITNESS_URL"\naudience = ["audit"]\n\n'
                      f'[audit]\nkey_env = "{KEY}"\n')
    args = ["--db", f"sqlite:///{tmp_path / 'cavra.db'}", "--config", str(config)]
    for command in (["escalation", "plan"], ["audit", "checkpoint"], ["escalation", "plan"],
                    ["audit", "checkpoint"]):
        code, out, err = run_cli(capsys, *args, *command)
        assert code == 0, err
    assert "remote-witness   delivered" in out
    bodies = [request.json() for request in http_server.requests]
    assert [b["kind"] for b in bodies] == ["checkpoint", "checkpoint"]
    assert [r.idempotency_key for r in http_server.requests] == [
        b["message"]["checkpoint_id"] for b in bodies]
    # What the receiver kept, exported as a JSON array of checkpoints.
    exported = tmp_path / "exported.json"
    exported.write_text(json.dumps([b["message"] for b in bodies]))
    code, out, err = run_cli(capsys, *args, "audit", "verify", "--witness", str(exported))
    assert code == 0, err
    assert "witnesses agree: 2 checkpoints, latest at seq 2" in out
    # A checkpoint whose signature was made with another key is refused.
    bodies[1]["message"]["signature"] = "hmac-sha256:" + "0" * 64
    exported.write_text(json.dumps([b["message"] for b in bodies]))
    code, _, err = run_cli(capsys, *args, "audit", "verify", "--witness", str(exported))
    assert code == 3
    assert "(seq 2," in err and "signature does not verify" in err
