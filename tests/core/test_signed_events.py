"""SSH-signed audit events and checkpoints, with real ssh-keygen keys held by a real ssh-agent
(SPEC §9). Forging an event "by" someone needs their key, not only the database file."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from store.policy import current_user
from store.signing import ssh_sign
from tests.core.audit_attacker import drop_all_triggers, head, restore_triggers, sql
from tests.core.helpers import run_cli, table_dump
from tests.ssh_keys import SshAgent, ssh_agent_fixture  # noqa: F401 (fixture)

ME = current_user()


@dataclass
class Signed:
    db: Path
    witness: Path
    allowed: Path
    args: list[str]
    capsys: pytest.CaptureFixture[str]

    def cli(self, *args: str) -> tuple[int, str, str]:
        return run_cli(self.capsys, *self.args, *args)


@pytest.fixture
def signed(tmp_path: Path, ssh_agent: SshAgent, capsys: pytest.CaptureFixture[str]) -> Signed:
    # The acting OS user's key is alice's here; bob is someone else with a key of his own.
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f'{ME} namespaces="cavra-audit" {ssh_agent.alice_public_key}\n'
                       f'bob namespaces="cavra-audit" {ssh_agent.bob_public_key}\n')
    witness = tmp_path / "witness" / "audit.jsonl"
    config = tmp_path / "cavra.toml"
    config.write_text(f"""
[providers.audit-witness]
kind = "outbox"
path = "{witness}"
audience = ["audit"]

[audit]
signing = "ssh"
checkpoint_signing = "ssh"
ssh_key = "{ssh_agent.alice_pub}"
allowed_signers = "{allowed}"
""")
    (tmp_path / "db").mkdir()
    db = tmp_path / "db" / "cavra.db"
    state = Signed(db=db, witness=witness, allowed=allowed, capsys=capsys,
                   args=["--db", f"sqlite:///{db}", "--config", str(config)])
    items = tmp_path / "items.json"
    items.write_text(json.dumps([{"recovery_id": "rec-1", "connector": "payments-api",
                                  "category": "rollback", "opened_at": "2026-01-01T00:00:00Z"}]))
    for command in (["recovery", "import", str(items)], ["escalation", "plan"],
                    ["escalation", "deliver", "latest"], ["audit", "checkpoint"]):
        code, _, err = state.cli(*command)
        assert code == 0, err
    return state


def test_every_event_carries_its_actors_signature(signed: Signed, tmp_path: Path) -> None:
    code, out, err = signed.cli("audit", "verify", "--allowed-signers", str(signed.allowed),
                                "--witness", str(signed.witness))
    assert code == 0, err
    with sqlite3.connect(signed.db) as conn:
        [(events,)] = conn.execute("SELECT count(*) FROM audit_events WHERE signature IS NOT NULL")
    assert events >= 3 and f"event signatures: {events} events signed by their actors" in out
    assert "witnesses agree: 1 checkpoints" in out
    # Independent oracle: OpenSSH itself verifies an exported event's signature.
    code, exported, _ = signed.cli("audit", "export")
    event = json.loads(exported.splitlines()[-1])
    signature = tmp_path / "event.sig"
    signature.write_text(event["signature"])
    check = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(signed.allowed), "-I", ME,
                            "-n", "cavra-audit", "-s", str(signature)],
                           input=event["sha256"].encode(), capture_output=True, timeout=10)
    assert check.returncode == 0, check.stderr
    assert b"Good" in check.stdout


def _forge(db: Path, signature_key: Path) -> int:
    """An attacker with the file and bob's key appends an event that claims the real user."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from store.audit import _event_digest, _hashable
    from store.tables import AuditEventRow

    seq, prev = head(db)
    engine = create_engine(f"sqlite:///{db}")
    with Session(engine) as session, session.begin():
        last = session.get(AuditEventRow, seq)
        assert last is not None
        row = AuditEventRow(seq=seq + 1, at=last.at, actor=ME, role=last.role,
                            action="escalation.ack", target_ids=[], policy_rule=last.policy_rule,
                            decision="allow", detail="outbox: accepted", records={},
                            evidence_sha256="0" * 64, prev_sha256=prev, sha256="")
        row.sha256 = _event_digest(_hashable(row))
        row.signature = ssh_sign(row.sha256.encode(), public_key=str(signature_key))
        session.add(row)
        sha = row.sha256
    engine.dispose()
    sql(db, "UPDATE audit_head SET seq = ?, sha256 = ? WHERE id = 1", params=(seq + 1, sha))
    return seq + 1


def test_an_event_signed_with_someone_elses_key_is_named(signed: Signed,
                                                         ssh_agent: SshAgent) -> None:
    forged = _forge(signed.db, ssh_agent.bob_pub)
    code, out, err = signed.cli("audit", "verify", "--allowed-signers", str(signed.allowed))
    assert "audit chain intact" in out and "evidence matches" in out
    assert code == 3
    assert f"audit event seq {forged} (actor {ME}): signature made by bob, not {ME}" in err


def test_a_stripped_signature_is_named(signed: Signed) -> None:
    saved = drop_all_triggers(signed.db)
    sql(signed.db, "UPDATE audit_events SET signature = NULL WHERE seq = 2")
    restore_triggers(signed.db, saved)
    code, _, err = signed.cli("audit", "verify", "--allowed-signers", str(signed.allowed))
    assert code == 3
    assert f"audit event seq 2 (actor {ME}): missing signature" in err


def test_without_an_agent_a_change_is_refused_and_nothing_written(
        signed: Signed, monkeypatch: pytest.MonkeyPatch) -> None:
    before = table_dump(signed.db)
    monkeypatch.delenv("SSH_AUTH_SOCK")
    code, out, err = signed.cli("escalation", "plan")
    assert code == 2 and out == ""
    assert err.startswith("cavra: error: audit: no ssh-agent") and len(err.splitlines()) == 1
    assert table_dump(signed.db) == before


def test_a_malformed_allowed_signers_file_is_one_line(signed: Signed, tmp_path: Path) -> None:
    bad = tmp_path / "bad_signers"
    bad.write_text("alice ssh-ed25519\n")
    before = table_dump(signed.db)
    code, out, err = signed.cli("audit", "verify", "--allowed-signers", str(bad))
    assert code == 2 and out == ""
    assert "line 1" in err and len(err.splitlines()) == 1
    assert table_dump(signed.db) == before


def test_without_an_agent_nothing_is_sent(signed: Signed, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    outbox = signed.db.parent / "outbox.jsonl"
    sent_before = outbox.read_text() if outbox.exists() else ""
    code, _, _ = signed.cli("escalation", "plan")
    assert code == 0
    before = table_dump(signed.db)
    monkeypatch.delenv("SSH_AUTH_SOCK")
    code, out, err = signed.cli("escalation", "deliver", "latest")
    assert code == 2 and len(err.splitlines()) == 1 and "no ssh-agent" in err
    assert table_dump(signed.db) == before  # no in-flight row left behind
    assert (outbox.read_text() if outbox.exists() else "") == sent_before  # nothing sent
