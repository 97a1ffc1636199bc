"""Bad input on the identity and audit features: one line on stderr, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.audit_config import witness_toml
from tests.core.helpers import run_cli, table_dump


@pytest.fixture
def seeded(tmp_path: Path, capsys: pytest.CaptureFixture[str],
           monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CAVRA_TEST_AUDIT_KEY", "k")
    (tmp_path / "cavra.toml").write_text(
        witness_toml(tmp_path / "witness" / "audit.jsonl"))
    db = tmp_path / "cavra.db"
    code, _, err = run_cli(capsys, "--db", f"sqlite:///{db}", "--config",
                           str(tmp_path / "cavra.toml"), "escalation", "plan")
    assert code == 0, err
    return db


def _one_line_refusal(capsys: pytest.CaptureFixture[str], db: Path, *args: str) -> str:
    before = table_dump(db)
    code, out, err = run_cli(capsys, "--db", f"sqlite:///{db}", *args)
    assert (code, out) == (2, ""), err
    assert len(err.splitlines()) == 1 and err.startswith("cavra: error: ")
    assert table_dump(db) == before
    return err


def test_a_checkpoint_without_its_key_variable(seeded: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAVRA_TEST_AUDIT_KEY")
    err = _one_line_refusal(capsys, seeded, "--config", str(tmp_path / "cavra.toml"),
                            "audit", "checkpoint")
    assert "CAVRA_TEST_AUDIT_KEY is not set" in err
    assert not (tmp_path / "witness").exists()


def test_a_checkpoint_with_no_witness(seeded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "no witness configured" in _one_line_refusal(capsys, seeded, "audit", "checkpoint")


@pytest.mark.parametrize(("content", "words"), [
    (None, "no such file"),
    ("{not json\n", "line 1: not JSON"),
    ('{"kind": "checkpoint", "message": {"seq": "x"}}\n', "not a checkpoint"),
    ('{"kind": "escalation", "message": {}}\n', "holds no checkpoint"),
    ("", "holds no checkpoint"),
], ids=["missing", "not-json", "not-a-checkpoint", "no-checkpoint", "empty"])
def test_an_unusable_witness_file(seeded: Path, tmp_path: Path, content: str | None, words: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    witness = tmp_path / "given.jsonl"
    if content is not None:
        witness.write_text(content)
    err = _one_line_refusal(capsys, seeded, "audit", "verify", "--witness", str(witness))
    assert words in err


def test_a_witness_that_is_a_folder(seeded: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert "unreadable" in _one_line_refusal(capsys, seeded, "audit", "verify", "--witness",
                                             str(tmp_path))


def test_hmac_checkpoints_need_the_key_to_verify(seeded: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    config = str(tmp_path / "cavra.toml")
    code, _, err = run_cli(capsys, "--db", f"sqlite:///{seeded}", "--config", config,
                           "audit", "checkpoint")
    assert code == 0, err
    monkeypatch.delenv("CAVRA_TEST_AUDIT_KEY")
    err = _one_line_refusal(capsys, seeded, "--config", config, "audit", "verify", "--witness",
                            str(tmp_path / "witness" / "audit.jsonl"))
    assert "CAVRA_TEST_AUDIT_KEY is not set" in err


@pytest.mark.parametrize(("config", "words"), [
    ('[identity]\nsource = "ldap"\n', "identity.source"),
    ('[audit]\ncheckpoint_signing = "hmac"\n', "needs key_env"),
    ('[audit]\nsigning = "gpg"\n', "audit.signing"),
    ('[audit]\ncheckpoint_minutes = 0\n', "audit.checkpoint_minutes"),
    ('[providers.w]\nkind = "slack"\nurl_env = "X"\naudience = ["audit"]\n',
     "audit witness must be of kind outbox or webhook"),
    ('[identity]\nsource = "database"\n', "needs PostgreSQL"),
], ids=["unknown-source", "hmac-without-key", "unknown-signing", "zero-minutes",
        "slack-witness", "database-identity-on-sqlite"])
def test_bad_identity_and_audit_config(seeded: Path, tmp_path: Path, config: str, words: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(config)
    assert words in _one_line_refusal(capsys, seeded, "--config", str(path), "escalation", "plan")


def test_checkpoint_refused_for_a_user_without_a_role(seeded: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "roles.toml"
    path.write_text((tmp_path / "cavra.toml").read_text() + '\n[roles]\nauditor = ["nobody"]\n')
    code, out, err = run_cli(capsys, "--db", f"sqlite:///{seeded}", "--config", str(path),
                             "--json", "audit", "checkpoint")
    assert code == 2 and "refused" in err
    assert not (tmp_path / "witness").exists()
    code, out, _ = run_cli(capsys, "--db", f"sqlite:///{seeded}", "audit", "export")
    assert json.loads(out.splitlines()[-1])["action"] == "audit.checkpoint"  # the denial
