"""A secret in a provider's environment variable never lands anywhere (SPEC §7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.core.helpers import WEBHOOK_CONFIG, run_cli
from tests.loopback import LoopbackHTTP, closed_port

URL_TOKEN = "xoxb-URLTOKEN-9a8b7c"
QUERY_TOKEN = "QUERYSECRET-1234"
HMAC_SECRET = "HMACSECRET-5678"


def _every_byte_written(tmp_path: Path) -> bytes:
    blobs = []
    for path in tmp_path.rglob("*"):
        if path.is_file():
            blobs.append(path.read_bytes())
    return b"\n".join(blobs)


@pytest.mark.parametrize("server_answer", ["ok", "500", "429", "refused", "timeout"])
def test_webhook_secrets_never_leak(server_answer: str, tmp_path: Path, http_server: LoopbackHTTP,
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    port = closed_port() if server_answer == "refused" else http_server.port
    monkeypatch.setenv("CAVRA_TEST_HOOK_URL",
                       f"http://127.0.0.1:{port}/services/{URL_TOKEN}?token={QUERY_TOKEN}")
    monkeypatch.setenv("CAVRA_TEST_HOOK_SECRET", HMAC_SECRET)
    if server_answer == "500":
        http_server.answer(500)
    elif server_answer == "429":
        http_server.answer(429, {"Retry-After": "60"})
    elif server_answer == "timeout":
        http_server.answer(200, delay_s=3.0)  # the provider's timeout_s is 2
    config = tmp_path / "cavra.toml"
    config.write_text(WEBHOOK_CONFIG)
    items = tmp_path / "items.json"
    items.write_text(json.dumps([{"recovery_id": "rec-1", "connector": "payments-api",
                                  "category": "rollback", "opened_at": "2026-11-27T00:00:00Z"}]))
    base = ["--db", f"sqlite:///{tmp_path / 'cavra.db'}", "--config", str(config)]
    outputs = []
    for args in (["recovery", "import", str(items)], ["escalation", "plan"],
                 ["escalation", "deliver", "latest"], ["retry", "run"], ["metrics"],
                 ["escalation", "ack", "latest", "--provider", "ops-webhook", "--state",
                  "accepted", "--notes", "private note"], ["audit", "export"]):
        code, out, err = run_cli(capsys, *base, *args, "--json")
        assert code == 0, err
        outputs.append(out + err)
    delivery = json.loads(outputs[2])[0]
    expected = {"ok": "delivered", "500": "failed", "429": "failed", "refused": "failed",
                "timeout": "unknown"}[server_answer]
    assert delivery["status"] == expected
    assert delivery["target"] == f"http://127.0.0.1:{port}/***"
    everything = _every_byte_written(tmp_path) + "".join(outputs).encode()
    for secret in (URL_TOKEN, QUERY_TOKEN, HMAC_SECRET):
        assert secret.encode() not in everything, secret
    # Acknowledgement notes stay in the database: not in output, exports, logs or messages.
    assert b"private note" not in "".join(outputs).encode()
    assert b"private note" not in (tmp_path / "data" / "cavra.log").read_bytes()
    assert b"private note" not in (tmp_path / "outbox.jsonl").read_bytes() if (
        tmp_path / "outbox.jsonl").exists() else True
