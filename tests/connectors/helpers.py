"""Helpers for the connector tests: config files, the CLI in-process, stored records."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cavra_tui.cli import main


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def config_text(providers: dict[str, dict[str, Any]], *, route: list[str] | None = None,
                extra: str = "") -> str:
    parts = []
    for name, keys in providers.items():
        parts.append(f"[providers.{name}]")
        parts += [f"{key} = {toml_value(value)}" for key, value in keys.items()]
        parts.append("")
    names = route if route is not None else list(providers)
    parts += ["[routing]", f"critical = {toml_value(names)}", f"warning = {toml_value(names)}",
              'fallback = "outbox"', "", extra]
    return "\n".join(parts)


class Cli:
    """`cavra …` in-process on one temp database and config, like a user's shell."""

    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp_path = tmp_path
        self.capsys = capsys
        self.db_path = tmp_path / "cavra.db"
        self.config_path = tmp_path / "cavra.toml"
        self.outputs: list[str] = []

    def configure(self, text: str) -> None:
        self.config_path.write_text(text, encoding="utf-8")

    def run(self, *args: str) -> tuple[int, str, str]:
        code = main(["--db", f"sqlite:///{self.db_path}", "--config", str(self.config_path),
                     *args])
        captured = self.capsys.readouterr()
        self.outputs.append(captured.out + captured.err)
        return code, captured.out, captured.err

    def json(self, *args: str, expect: int = 0) -> Any:
        code, out, err = self.run(*args, "--json")
        assert code == expect, err
        return json.loads(out)

    def seed_plan(self) -> dict[str, Any]:
        """One breached recovery item → a critical plan routed to the configured providers."""
        items = self.tmp_path / "items.json"
        items.write_text(json.dumps([{"recovery_id": "rec-1", "connector": "payments-api",
                                      "category": "rollback",
                                      "opened_at": "2026-01-01T00:00:00Z"}]))
        self.json("recovery", "import", str(items))
        plan: dict[str, Any] = self.json("escalation", "plan")
        return plan

    def rows(self, table: str, where: str = "1=1", *params: Any) -> list[dict[str, Any]]:
        conn = sqlite3.connect(self.db_path)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in conn.execute(
                f"SELECT * FROM {table} WHERE {where} ORDER BY rowid", params)]
        finally:
            conn.close()

    def every_byte(self) -> bytes:
        """The database (and WAL), outboxes, the log file and everything printed."""
        blobs = [path.read_bytes() for path in self.tmp_path.rglob("*") if path.is_file()]
        return b"\n".join(blobs) + "".join(self.outputs).encode()
