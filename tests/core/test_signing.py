"""Audit-chain signing: HMAC from the environment, SSH signatures through a real ssh-agent."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from store.signing import (
    SSH_NAMESPACE,
    SigningError,
    agent_public_keys,
    hmac_key_from_env,
    hmac_signature,
    hmac_valid,
    load_allowed_signers,
    ssh_sign,
    ssh_verify,
    verify_many,
)
from tests.ssh_keys import SshAgent, make_key, ssh_agent_fixture  # noqa: F401 (fixture)

MESSAGE = b'{"event":"retry","pair":"p-1","seq":7}'


def _one_line(error: pytest.ExceptionInfo[SigningError]) -> str:
    text = str(error.value)
    assert "\n" not in text and text.startswith("audit: ")
    return text


# --- HMAC -------------------------------------------------------------------------------------

def test_hmac_round_trip_and_rejections() -> None:
    key = b"k3y-material"
    signature = hmac_signature(key, MESSAGE)
    assert signature.startswith("hmac-sha256:") and len(signature) == len("hmac-sha256:") + 64
    assert hmac_valid(key, MESSAGE, signature)
    assert not hmac_valid(b"other-key", MESSAGE, signature)
    assert not hmac_valid(key, MESSAGE + b" ", signature)
    assert not hmac_valid(key, MESSAGE, signature.removeprefix("hmac-sha256:"))
    assert not hmac_valid(key, MESSAGE, "hmac-sha256:é")  # non-ASCII must not raise


def test_hmac_key_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAVRA_AUDIT_KEY", "s3cret-value")
    assert hmac_key_from_env("CAVRA_AUDIT_KEY") == b"s3cret-value"


@pytest.mark.parametrize(("value", "ending"), [(None, "is not set"), ("", "is empty"),
                                               ("  ", "is empty")])
def test_missing_or_empty_key_variable(monkeypatch: pytest.MonkeyPatch, value: str | None,
                                       ending: str) -> None:
    if value is None:
        monkeypatch.delenv("CAVRA_AUDIT_KEY", raising=False)
    else:
        monkeypatch.setenv("CAVRA_AUDIT_KEY", value)
    with pytest.raises(SigningError) as error:
        hmac_key_from_env("CAVRA_AUDIT_KEY")
    assert _one_line(error) == f"audit: key variable CAVRA_AUDIT_KEY {ending}"


# --- SSH signing and verification --------------------------------------------------------------

def test_agent_lists_both_keys(ssh_agent: SshAgent) -> None:
    assert agent_public_keys() == [ssh_agent.alice_public_key, ssh_agent.bob_public_key]


def test_alice_signs_and_verifies(ssh_agent: SshAgent) -> None:
    signature = ssh_sign(MESSAGE, public_key=str(ssh_agent.alice_pub))
    assert signature.startswith("-----BEGIN SSH SIGNATURE-----")
    assert signature.rstrip().endswith("-----END SSH SIGNATURE-----")
    verdict = ssh_verify(MESSAGE, signature, principal="alice",
                         allowed_signers=ssh_agent.allowed_signers)
    assert verdict.ok and verdict.reason == "good signature by alice" and verdict.signer == "alice"


def test_default_key_is_agents_first(ssh_agent: SshAgent) -> None:
    signature = ssh_sign(MESSAGE)
    assert ssh_verify(MESSAGE, signature, principal="alice",
                      allowed_signers=ssh_agent.allowed_signers).ok
    assert not ssh_verify(MESSAGE, signature, principal="bob",
                          allowed_signers=ssh_agent.allowed_signers).ok


def test_bobs_signature_claimed_by_alice_names_bob(ssh_agent: SshAgent) -> None:
    signature = ssh_sign(MESSAGE, public_key=ssh_agent.bob_public_key)
    verdict = ssh_verify(MESSAGE, signature, principal="alice",
                         allowed_signers=ssh_agent.allowed_signers)
    assert not verdict.ok
    assert verdict.reason == "signature made by bob, not alice"
    assert verdict.signer == "bob"


def test_altered_message_is_invalid(ssh_agent: SshAgent) -> None:
    signature = ssh_sign(MESSAGE, public_key=str(ssh_agent.alice_pub))
    verdict = ssh_verify(MESSAGE.replace(b"7", b"8"), signature, principal="alice",
                         allowed_signers=ssh_agent.allowed_signers)
    assert (verdict.ok, verdict.reason, verdict.signer) == (False, "invalid signature", None)


def test_garbage_signature_is_invalid(ssh_agent: SshAgent) -> None:
    verdict = ssh_verify(MESSAGE, "not a signature", principal="alice",
                         allowed_signers=ssh_agent.allowed_signers)
    assert (verdict.ok, verdict.reason) == (False, "invalid signature")


@pytest.mark.parametrize("signature", [None, "", "  \n"])
def test_missing_signature(ssh_agent: SshAgent, signature: str | None) -> None:
    verdict = ssh_verify(MESSAGE, signature, principal="alice",
                         allowed_signers=ssh_agent.allowed_signers)
    assert (verdict.ok, verdict.reason, verdict.signer) == (False, "missing signature", None)


def test_key_not_in_allowed_signers(ssh_agent: SshAgent, tmp_path: Path) -> None:
    only_alice = tmp_path / "only_alice"
    only_alice.write_text(f"alice {ssh_agent.alice_public_key}\n", encoding="utf-8")
    signature = ssh_sign(MESSAGE, public_key=str(ssh_agent.bob_pub))
    verdict = ssh_verify(MESSAGE, signature, principal="alice", allowed_signers=only_alice)
    assert not verdict.ok and verdict.signer is None
    assert "not in allowed_signers" in verdict.reason


def test_other_namespace_is_invalid(ssh_agent: SshAgent, tmp_path: Path) -> None:
    """A signature git (namespace "git") made with alice's key is no audit signature."""
    pub = tmp_path / "alice-copy.pub"
    pub.write_text(ssh_agent.alice_public_key + "\n", encoding="utf-8")
    done = subprocess.run(["ssh-keygen", "-Y", "sign", "-n", "git", "-f", str(pub), "-q"],
                          input=MESSAGE, capture_output=True, timeout=10, check=True)
    verdict = ssh_verify(MESSAGE, done.stdout.decode(), principal="alice",
                         allowed_signers=ssh_agent.allowed_signers)
    assert (verdict.ok, verdict.reason) == (False, "invalid signature")


def test_verify_many(ssh_agent: SshAgent) -> None:
    by_alice = ssh_sign(b"one", public_key=ssh_agent.alice_public_key)
    by_bob = ssh_sign(b"two", public_key=ssh_agent.bob_public_key)
    verdicts = verify_many([(b"one", by_alice, "alice"), (b"two", by_bob, "bob"),
                            (b"two", by_bob, "alice"), (b"three", None, "bob")],
                           ssh_agent.allowed_signers)
    assert [(v.ok, v.signer) for v in verdicts] == [(True, "alice"), (True, "bob"),
                                                    (False, "bob"), (False, None)]


def test_signature_checks_out_with_system_ssh_keygen(ssh_agent: SshAgent,
                                                     tmp_path: Path) -> None:
    """Independent oracles: `ssh-keygen -Y check-novalidate` and the SSHSIG blob itself."""
    signature = ssh_sign(MESSAGE, public_key=str(ssh_agent.alice_pub))
    sig = tmp_path / "oracle.sig"
    sig.write_text(signature, encoding="utf-8")

    def check(message: bytes) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["ssh-keygen", "-Y", "check-novalidate", "-n", SSH_NAMESPACE,
                               "-s", str(sig)], input=message, capture_output=True, timeout=10,
                              check=False)

    assert check(MESSAGE).returncode == 0
    assert check(MESSAGE + b"x").returncode != 0
    # PROTOCOL.sshsig: "SSHSIG", uint32 version, string public key, string namespace, ...
    body = "".join(line for line in signature.splitlines() if not line.startswith("-----"))
    blob = base64.b64decode(body)
    assert blob[:6] == b"SSHSIG"
    size = int.from_bytes(blob[10:14], "big")
    assert blob[14:14 + size] == base64.b64decode(ssh_agent.alice_public_key.split()[1])
    ns_size = int.from_bytes(blob[14 + size:18 + size], "big")
    assert blob[18 + size:18 + size + ns_size] == SSH_NAMESPACE.encode()


# --- agent failures ----------------------------------------------------------------------------

def test_no_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    for call in (agent_public_keys, lambda: ssh_sign(MESSAGE)):
        with pytest.raises(SigningError) as error:
            call()
        assert _one_line(error) == "audit: no ssh-agent (SSH_AUTH_SOCK is not set)"


def test_unreachable_agent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-agent.sock"
    monkeypatch.setenv("SSH_AUTH_SOCK", str(missing))
    with pytest.raises(SigningError) as error:
        ssh_sign(MESSAGE)
    text = _one_line(error)
    assert "unreachable" in text and str(missing) in text


def test_agent_without_keys(ssh_agent: SshAgent) -> None:
    subprocess.run(["ssh-add", "-D"], capture_output=True, timeout=10, check=True,
                   env={**os.environ, "SSH_AUTH_SOCK": str(ssh_agent.socket)})
    with pytest.raises(SigningError) as error:
        ssh_sign(MESSAGE)
    assert "holds no key" in _one_line(error)


def test_key_not_held_by_agent(ssh_agent: SshAgent, tmp_path: Path) -> None:
    stranger = make_key(tmp_path, "carol")
    with pytest.raises(SigningError) as error:
        ssh_sign(MESSAGE, public_key=str(stranger))
    assert "does not hold" in _one_line(error)


def test_private_key_path_is_refused_unread(ssh_agent: SshAgent,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    private = ssh_agent.alice_pub.with_suffix("")
    opened: list[Path] = []
    real_read_text, real_read_bytes = Path.read_text, Path.read_bytes

    def read_text(self: Path, *args: Any, **kwargs: Any) -> str:
        opened.append(self)
        return real_read_text(self, *args, **kwargs)

    def read_bytes(self: Path) -> bytes:
        opened.append(self)
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_text", read_text)
    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(SigningError) as error:
        ssh_sign(MESSAGE, public_key=str(private))
    text = _one_line(error)
    assert "not a .pub file" in text and "PRIVATE" not in text
    assert private not in opened
    # A .pub file whose content is a private key is refused without echoing it.
    disguised = private.with_name("disguised.pub")
    disguised.write_text(real_read_text(private), encoding="utf-8")
    with pytest.raises(SigningError) as error:
        ssh_sign(MESSAGE, public_key=str(disguised))
    text = _one_line(error)
    assert "holds no public key line" in text and "PRIVATE" not in text


def test_missing_ssh_keygen(ssh_agent: SshAgent, monkeypatch: pytest.MonkeyPatch,
                            tmp_path: Path) -> None:
    signature = ssh_sign(MESSAGE)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(SigningError) as error:
        ssh_verify(MESSAGE, signature, principal="alice",
                   allowed_signers=ssh_agent.allowed_signers)
    assert _one_line(error) == "audit: ssh-keygen not found (install openssh-client)"


# --- allowed_signers ---------------------------------------------------------------------------

def test_allowed_signers_accepts_fixture_file(ssh_agent: SshAgent) -> None:
    assert load_allowed_signers(str(ssh_agent.allowed_signers)) == (
        ssh_agent.allowed_signers.resolve())


def test_allowed_signers_malformed_line(ssh_agent: SshAgent, tmp_path: Path) -> None:
    bad = tmp_path / "allowed_signers"
    bad.write_text(f"# audit signers\n\nalice {ssh_agent.alice_public_key}\n"
                   f'bob namespaces="cavra-audit" ssh-ed25519\n', encoding="utf-8")
    with pytest.raises(SigningError) as error:
        load_allowed_signers(bad)
    assert _one_line(error) == f"audit: allowed_signers {bad}: line 4 is malformed"
    with pytest.raises(SigningError):
        ssh_verify(MESSAGE, "x", principal="alice", allowed_signers=bad)


def test_allowed_signers_bad_base64_is_malformed(tmp_path: Path) -> None:
    bad = tmp_path / "allowed_signers"
    bad.write_text("alice ssh-ed25519 AAAAnot-base64!!\n", encoding="utf-8")
    with pytest.raises(SigningError) as error:
        load_allowed_signers(bad)
    assert "line 1 is malformed" in _one_line(error)


def test_allowed_signers_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(SigningError) as error:
        load_allowed_signers(missing)
    assert _one_line(error) == f"audit: allowed_signers {missing}: no such file"


def test_allowed_signers_unreadable(tmp_path: Path) -> None:
    with pytest.raises(SigningError) as error:
        load_allowed_signers(tmp_path)  # a directory
    assert _one_line(error).endswith(": unreadable")
