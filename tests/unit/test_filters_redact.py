"""plugins/filter/redact.py: secrets never reach a message or an SSM record."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins" / "filter"))
from redact import redact_secrets  # noqa: E402

KEY = "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f"
HASH = "sha256:" + "a" * 64


def test_tokens_keys_and_pem_are_hidden():
    text = (
        f"error: token abcdef.0123456789abcdef rejected\ncertificateKey: \"{KEY}\"\n--certificate-key {KEY}\n"
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\n"
        f"discovery hash {HASH}"
    )
    out = redact_secrets(text)
    assert "abcdef.0123456789abcdef" not in out
    assert KEY not in out
    assert "MIIEow" not in out
    assert HASH in out  # public: the CA certificate hash
    assert out.count("<redacted>") == 4


def test_tail_and_none():
    assert redact_secrets("x" * 10 + "abcdef.0123456789abcdef", tail=12) == "xx<redacted>"
    assert redact_secrets(None) == ""
    assert redact_secrets("plain") == "plain"
