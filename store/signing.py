"""Audit-chain signatures: HMAC-SHA256 keyed from the environment, or SSH signatures made by a
real ssh-agent via ``ssh-keygen -Y`` (as git does). Private keys never pass through us."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from store.errors import UserError

SSH_NAMESPACE = "cavra-audit"
_HMAC_PREFIX = "hmac-sha256:"
_TIMEOUT_S = 10
_KEY_TYPE = re.compile(r"^(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9-]+@openssh\.com)$")
_TOKEN = re.compile(r'(?:[^\s"]|"[^"]*")+')


class SigningError(UserError):
    """A signing or verification step failed; the message is one line starting ``audit: ``."""

    def __init__(self, message: str) -> None:
        # Collapse whitespace so tool output or odd paths can never break the one-line rule.
        super().__init__(" ".join(message.split()))


def hmac_key_from_env(variable: str) -> bytes:
    """Read the HMAC key from the environment, so it never sits in a config file or the DB."""
    value = os.environ.get(variable)
    if value is None:
        raise SigningError(f"audit: key variable {variable} is not set")
    if not value.strip():
        raise SigningError(f"audit: key variable {variable} is empty")
    return value.encode()


def hmac_signature(key: bytes, message: bytes) -> str:
    """Tag with the algorithm so a future scheme cannot be mistaken for this one."""
    return _HMAC_PREFIX + hmac.new(key, message, hashlib.sha256).hexdigest()


def hmac_valid(key: bytes, message: bytes, signature: str) -> bool:
    """Constant-time comparison, so timing reveals nothing about the expected value."""
    return hmac.compare_digest(hmac_signature(key, message).encode(), signature.encode())


def _env() -> dict[str, str]:
    """Only what ssh tools need: no secrets from our environment leak into a child."""
    return {k: os.environ[k] for k in ("PATH", "HOME", "SSH_AUTH_SOCK") if k in os.environ}


def _first_line(text: bytes) -> str:
    return (text.decode(errors="replace").strip().splitlines() or ["no output"])[0]


def _run(args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """Run an OpenSSH tool with the house rules (timeout, captured output, minimal env)."""
    try:
        return subprocess.run(args, input=stdin, capture_output=True, timeout=_TIMEOUT_S,
                              check=False, env=_env())
    except FileNotFoundError:
        raise SigningError(f"audit: {args[0]} not found (install openssh-client)") from None
    except subprocess.TimeoutExpired:
        raise SigningError(f"audit: {args[0]} timed out after {_TIMEOUT_S}s") from None


def agent_public_keys() -> list[str]:
    """The keys the agent can sign with; a clear error beats a cryptic ssh-keygen failure."""
    sock = os.environ.get("SSH_AUTH_SOCK")
    if not sock:
        raise SigningError("audit: no ssh-agent (SSH_AUTH_SOCK is not set)")
    done = _run(["ssh-add", "-L"])
    keys = [line.strip() for line in done.stdout.decode(errors="replace").splitlines()
            if _is_key_line(line)]
    if done.returncode not in (0, 1):  # 1 is "The agent has no identities."
        raise SigningError(f"audit: ssh-agent at {sock} is unreachable: "
                           f"{_first_line(done.stderr)}")
    if not keys:
        raise SigningError(f"audit: ssh-agent at {sock} holds no key")
    return keys


def _key_blob(keytype: str, b64: str) -> bytes | None:
    """Decode a key's base64 and check it really holds a key of that type (SSH wire format)."""
    if not _KEY_TYPE.match(keytype):
        return None
    try:
        blob = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    size = int.from_bytes(blob[:4], "big")
    return blob if len(blob) > 4 + size and blob[4:4 + size] == keytype.encode() else None


def _is_key_line(line: str) -> bool:
    return len(parts := line.split()) >= 2 and _key_blob(parts[0], parts[1]) is not None


def _public_key_line(public_key: str | None, agent_keys: list[str]) -> str:
    if public_key is None:
        return agent_keys[0]
    if _is_key_line(public_key):
        return public_key.strip()
    path = Path(public_key).expanduser()
    if path.suffix != ".pub":  # refuse before reading: it could be the private key itself
        raise SigningError(f"audit: public key {path} is not a .pub file or a key line")
    try:
        line = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        raise SigningError(f"audit: public key {path} is unreadable") from None
    if not _is_key_line(line):
        raise SigningError(f"audit: public key {path} holds no public key line")
    return line


def ssh_sign(message: bytes, *, public_key: str | None = None) -> str:
    """Sign with the agent only: ssh-keygen sees a lone .pub in a temp dir, so it cannot fall
    back to a private key file on disk."""
    agent_keys = agent_public_keys()
    line = _public_key_line(public_key, agent_keys)
    held = {tuple(k.split()[:2]) for k in agent_keys}
    if tuple(line.split()[:2]) not in held:
        raise SigningError("audit: the ssh-agent does not hold that public key")
    with tempfile.TemporaryDirectory(prefix="cavra-sign-") as tmp:
        pub = Path(tmp) / "signer.pub"
        pub.write_text(line + "\n", encoding="utf-8")
        done = _run(["ssh-keygen", "-Y", "sign", "-n", SSH_NAMESPACE, "-f", str(pub), "-q"],
                    message)
    armored = done.stdout.decode(errors="replace")
    if done.returncode != 0 or not armored.startswith("-----BEGIN SSH SIGNATURE-----"):
        raise SigningError(f"audit: ssh-keygen could not sign: {_first_line(done.stderr)}")
    return armored


def load_allowed_signers(path: str | Path) -> Path:
    """Fail early and by line number, rather than as a vague 'could not verify' later."""
    given = Path(path).expanduser()
    try:
        text = given.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SigningError(f"audit: allowed_signers {path}: no such file") from None
    except (OSError, UnicodeDecodeError):
        raise SigningError(f"audit: allowed_signers {path}: unreadable") from None
    entries = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tokens = _TOKEN.findall(line)
        # principals [options] keytype base64 [comment]
        if not any(len(tokens) > at + 1 and _key_blob(tokens[at], tokens[at + 1]) is not None
                   for at in (1, 2)):
            raise SigningError(f"audit: allowed_signers {path}: line {number} is malformed")
        entries += 1
    if not entries:
        raise SigningError(f"audit: allowed_signers {path}: no signers")
    return given.resolve()


@dataclass(frozen=True)
class SshVerdict:
    """What a check found; ``signer`` is set only when the signature is genuine."""
    ok: bool
    reason: str
    signer: str | None


def ssh_verify(message: bytes, signature: str | None, *, principal: str,
               allowed_signers: Path) -> SshVerdict:
    """Check a signature claims ``principal``; on failure, name who really signed."""
    allowed_signers = load_allowed_signers(allowed_signers)  # clear errors, not "can't verify"
    if not signature or not signature.strip():
        return SshVerdict(False, "missing signature", None)
    if not principal or any(c.isspace() for c in principal):
        raise SigningError("audit: principal must be one non-empty word")
    with tempfile.TemporaryDirectory(prefix="cavra-verify-") as tmp:
        sig = Path(tmp) / "event.sig"
        sig.write_text(signature.strip() + "\n", encoding="utf-8")
        signers, sig_arg = str(allowed_signers), str(sig)
        done = _run(["ssh-keygen", "-Y", "verify", "-f", signers, "-I", principal, "-n",
                     SSH_NAMESPACE, "-s", sig_arg], message)
        if done.returncode == 0:
            return SshVerdict(True, f"good signature by {principal}", principal)
        # Genuine over this message and namespace, by whatever key it embeds?
        genuine = _run(["ssh-keygen", "-Y", "check-novalidate", "-n", SSH_NAMESPACE,
                        "-s", sig_arg], message)
        if genuine.returncode != 0:
            return SshVerdict(False, "invalid signature", None)
        found = _run(["ssh-keygen", "-Y", "find-principals", "-s", sig_arg, "-f", signers])
    words = found.stdout.decode(errors="replace").split()
    names = sorted({name for word in words for name in word.split(",") if name})
    if found.returncode != 0 or not names:
        return SshVerdict(False, f"signature made by a key not in allowed_signers, "
                                 f"not {principal}", None)
    if principal in names:  # alice's key, but her entry refuses it (namespace, validity)
        return SshVerdict(False, "invalid signature", None)
    who = ",".join(names)
    return SshVerdict(False, f"signature made by {who}, not {principal}", who)


def verify_many(items: Iterable[tuple[bytes, str | None, str]],
                allowed_signers: Path) -> list[SshVerdict]:
    """Verify (message, signature, principal) triples, e.g. a whole audit chain, in order."""
    return [ssh_verify(message, signature, principal=principal, allowed_signers=allowed_signers)
            for message, signature, principal in items]
