"""A real ssh-agent holding two fresh ed25519 keys (alice, bob) and a matching allowed_signers.

Register the fixture by importing it into a test module or a conftest.py (pytest finds
fixtures by scanning module attributes), then ask for it by its name ``ssh_agent``::

    from tests.ssh_keys import SshAgent, ssh_agent_fixture  # noqa: F401 (fixture)

    def test_x(ssh_agent: SshAgent) -> None: ...

The function has a different name than the fixture so the parameter does not shadow the import
(ruff F811). Nothing here reads the developer's own keys or agent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

NAMESPACE = "cavra-audit"
_START_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class SshAgent:
    """The running agent's socket, both keys' .pub files and lines, and allowed_signers."""

    socket: Path
    alice_pub: Path
    bob_pub: Path
    alice_public_key: str
    bob_public_key: str
    allowed_signers: Path


def _tool_env(socket: Path | None = None) -> dict[str, str]:
    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    if socket is not None:
        env["SSH_AUTH_SOCK"] = str(socket)
    return env


def make_key(directory: Path, name: str) -> Path:
    """A passphrase-less ed25519 key made by the real ssh-keygen; returns the .pub path."""
    key = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)],
                   check=True, capture_output=True, timeout=10, env=_tool_env())
    return key.with_name(name + ".pub")


def _start_agent(socket: Path) -> subprocess.Popen[bytes]:
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket)], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=_tool_env())
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not socket.exists():
        if agent.poll() is not None or time.monotonic() > deadline:
            _stop_agent(agent)
            pytest.fail(f"ssh-agent did not create {socket} within {_START_TIMEOUT_S}s")
        time.sleep(0.02)
    return agent


def _stop_agent(agent: subprocess.Popen[bytes]) -> None:
    if agent.poll() is None:
        agent.terminate()
        try:
            agent.wait(timeout=5)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait(timeout=5)


@pytest.fixture(name="ssh_agent")
def ssh_agent_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SshAgent]:
    """Two keys in a fresh agent, SSH_AUTH_SOCK pointing at it for the test's duration."""
    for tool in ("ssh-keygen", "ssh-agent", "ssh-add"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not on PATH (install openssh-client)")
    keys = tmp_path / "ssh-keys"
    keys.mkdir()
    alice_pub, bob_pub = make_key(keys, "alice"), make_key(keys, "bob")
    # A Unix socket path must stay under ~104 bytes; tmp_path can be longer than that.
    sock_dir = Path(tempfile.mkdtemp(prefix="cavra-agent-"))
    socket = sock_dir / "agent.sock"
    agent: subprocess.Popen[bytes] | None = None
    try:
        agent = _start_agent(socket)
        for pub in (alice_pub, bob_pub):
            subprocess.run(["ssh-add", "-q", str(pub.with_suffix(""))], check=True,
                           capture_output=True, timeout=10, env=_tool_env(socket))
        alice_line = alice_pub.read_text(encoding="utf-8").strip()
        bob_line = bob_pub.read_text(encoding="utf-8").strip()
        allowed = tmp_path / "allowed_signers"
        allowed.write_text(f'alice namespaces="{NAMESPACE}" {alice_line}\n'
                           f'bob namespaces="{NAMESPACE}" {bob_line}\n', encoding="utf-8")
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket))
        yield SshAgent(socket=socket, alice_pub=alice_pub, bob_pub=bob_pub,
                       alice_public_key=alice_line, bob_public_key=bob_line,
                       allowed_signers=allowed)
    finally:
        if agent is not None:
            _stop_agent(agent)
        shutil.rmtree(sock_dir, ignore_errors=True)
