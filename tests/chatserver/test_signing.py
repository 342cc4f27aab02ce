"""Service-to-service request signatures."""

import hashlib
import hmac

import pytest

from chatserver.signing import SignatureError, signed_headers, verify_request

NOW = 1_795_000_000


def test_signature_known_answer():
    """The signature is hex HMAC-SHA256 over ts, METHOD, path and body joined by newlines."""
    headers = signed_headers("s", "post", "/internal/x?a=1", b'{"b":1}', NOW)
    expected = hmac.new(
        b"s", b'1795000000\nPOST\n/internal/x?a=1\n{"b":1}', hashlib.sha256
    ).hexdigest()
    assert headers == {"X-Chat-Timestamp": "1795000000", "X-Chat-Signature": expected}


def _verify(headers, secrets=("s",), now=NOW, body=b"", path="/internal/stats"):
    verify_request(
        secrets,
        timestamp=headers.get("X-Chat-Timestamp"),
        sig=headers.get("X-Chat-Signature"),
        method="GET",
        path_and_query=path,
        body=body,
        now=now,
    )


def test_valid_previous_secret_and_window():
    """Current and previous secrets verify; 60 s of skew is fine, 61 s is stale."""
    _verify(signed_headers("s", "GET", "/internal/stats", b"", NOW))
    _verify(signed_headers("old", "GET", "/internal/stats", b"", NOW), secrets=("s", "old"))
    _verify(signed_headers("s", "GET", "/internal/stats", b"", NOW - 60))
    with pytest.raises(SignatureError, match="stale_request"):
        _verify(signed_headers("s", "GET", "/internal/stats", b"", NOW - 61))


@pytest.mark.parametrize(
    "headers, kwargs",
    [
        ({}, {}),
        ({"X-Chat-Timestamp": str(NOW)}, {}),
        ({"X-Chat-Timestamp": "x", "X-Chat-Signature": "00"}, {}),
        (signed_headers("other", "GET", "/internal/stats", b"", NOW), {}),
        (signed_headers("s", "GET", "/internal/stats", b"", NOW), {"body": b"x"}),
        (signed_headers("s", "GET", "/internal/stats", b"", NOW), {"path": "/internal/stats?a"}),
    ],
)
def test_missing_or_mismatched_signatures_are_bad_signature(headers, kwargs):
    """Missing headers, a wrong secret, body or path all give bad_signature."""
    with pytest.raises(SignatureError, match="bad_signature"):
        _verify(headers, **kwargs)
