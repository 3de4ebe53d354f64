"""Google identity without Google: a local RSA key that signs real ID tokens, and a fake
google-auth transport that answers as the metadata server and the certificate endpoint do.

The tokens are real RS256 JWTs, so google-auth verifies signature, expiry, issuer and
audience exactly as it would in production; only the network is replaced.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt
from google.auth import exceptions as gexc
from requests.structures import CaseInsensitiveDict

CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
SA_EMAIL = "rds-layer2@example-project.iam.gserviceaccount.com"


class Signer:
    """An RSA key with a key id, its self-signed certificate, and a token factory."""

    def __init__(self, kid: str = "test-key-1") -> None:
        self.kid = kid
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.signer = crypt.RSASigner.from_string(pem, key_id=kid)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-google-signer")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()

    def token(self, audience: str, **claims: Any) -> str:
        """A Google-style ID token for ``audience`` (claims override the defaults)."""
        now = int(time.time())
        payload = {
            "iss": "https://accounts.google.com",
            "aud": audience,
            "sub": "1234567890",
            "email": SA_EMAIL,
            "email_verified": True,
            "iat": now,
            "exp": now + 3600,
            **claims,
        }
        return jwt.encode(self.signer, payload).decode()


@dataclass
class FakeResponse:
    """What google-auth's transport returns: ``status``, ``headers``, ``data``."""

    status: int
    data: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.headers = CaseInsensitiveDict(self.headers)  # as google-auth's real transport


@dataclass
class FakeTransport:
    """A google-auth ``Request``: answers by URL, records every call, never opens a socket."""

    handler: Callable[[str, str, dict[str, str]], FakeResponse]
    calls: list[str] = field(default_factory=list)

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: Any = None,
        **kwargs: Any,
    ) -> FakeResponse:
        self.calls.append(url)
        return self.handler(url, method, headers or {})


def certs_transport(signer: Signer, max_age: int = 3600) -> FakeTransport:
    """Google's certificate endpoint serving ``signer``'s certificate."""

    def handle(url: str, method: str, headers: dict[str, str]) -> FakeResponse:
        assert url == CERTS_URL, url
        body = json.dumps({signer.kid: signer.cert_pem}).encode()
        return FakeResponse(200, body, {"Cache-Control": f"public, max-age={max_age}"})

    return FakeTransport(handle)


def metadata_transport(signer: Signer) -> FakeTransport:
    """The metadata server of a Cloud Function: ping, service account info, identity."""
    flavor = {"Metadata-Flavor": "Google"}

    def handle(url: str, method: str, headers: dict[str, str]) -> FakeResponse:
        parts = urlsplit(url)
        assert parts.hostname in ("169.254.169.254", "metadata.google.internal"), url
        path = parts.path
        if path in ("", "/"):
            return FakeResponse(200, b"", flavor)
        if path.endswith("/service-accounts/default/"):
            info = {"email": SA_EMAIL, "aliases": ["default"], "scopes": []}
            json_flavor = {**flavor, "Content-Type": "application/json"}
            return FakeResponse(200, json.dumps(info).encode(), json_flavor)
        if path.endswith("/service-accounts/default/identity"):
            audience = parse_qs(parts.query)["audience"][0]
            text_flavor = {**flavor, "Content-Type": "text/html; charset=utf-8"}
            return FakeResponse(200, signer.token(audience).encode(), text_flavor)
        return FakeResponse(404, b"not found", flavor)

    return FakeTransport(handle)


def offline_transport() -> FakeTransport:
    """No metadata server (Kubernetes, a laptop): nothing answers as Google."""

    def handle(url: str, method: str, headers: dict[str, str]) -> FakeResponse:
        raise gexc.TransportError("connection refused")

    return FakeTransport(handle)


def not_google_transport() -> FakeTransport:
    """Something answers at the metadata address, but not as Google (no flavor header)."""
    return FakeTransport(lambda url, method, headers: FakeResponse(404, b""))
