"""MLLP over TLS and mutual TLS, with certificates made for the test."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fhir_server.repository.inbox import MongoInbox
from fhir_server.settings import Settings
from hl7_listener.client import MllpClosed, ack_code, client_tls_context
from tests.integration.hl7_helpers import RunningListener, adt, send


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(
    subject: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, *, ca: bool = False
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer[0].subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    signer = issuer[1] if issuer else key
    return builder.sign(signer, hashes.SHA256()), key


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    cert_path, key_path = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("pki")
    ca = _issue("test CA", None, ca=True)
    ca_cert, _ = _write(base / "ca", *ca)
    server_cert, server_key = _write(base / "server", *_issue("127.0.0.1", ca))
    client_cert, client_key = _write(base / "client", *_issue("lab system", ca))
    stranger = _issue("stranger CA", None, ca=True)
    stranger_cert, stranger_key = _write(base / "stranger", *_issue("stranger", stranger))
    return {
        "ca": ca_cert,
        "server_cert": server_cert,
        "server_key": server_key,
        "client_cert": client_cert,
        "client_key": client_key,
        "stranger_cert": stranger_cert,
        "stranger_key": stranger_key,
    }


@pytest.fixture
def inbox(settings: Settings) -> Iterator[MongoInbox]:
    assert settings.mongodb_uri
    store = MongoInbox(settings.mongodb_uri, settings.database)
    yield store
    store.drop()
    store.close()


def test_tls(settings: Settings, inbox: MongoInbox, pki: dict[str, Path]) -> None:
    tls = settings.with_overrides(mllp_tls_cert=pki["server_cert"], mllp_tls_key=pki["server_key"])
    with RunningListener(tls) as listener:
        [reply] = send(listener.address, [adt("T1")], tls=client_tls_context(str(pki["ca"])))
        assert ack_code(reply) == "AA"
        with pytest.raises((MllpClosed, ConnectionError, ssl.SSLError)):
            send(listener.address, [adt("T2")])  # plaintext to a TLS port gets no ACK


def test_mutual_tls_requires_a_client_certificate_from_the_ca(
    settings: Settings, inbox: MongoInbox, pki: dict[str, Path]
) -> None:
    mtls = settings.with_overrides(
        mllp_tls_cert=pki["server_cert"], mllp_tls_key=pki["server_key"], mllp_tls_client_ca=pki["ca"]
    )
    with RunningListener(mtls) as listener:
        trusted = client_tls_context(str(pki["ca"]), str(pki["client_cert"]), str(pki["client_key"]))
        assert ack_code(send(listener.address, [adt("M1")], tls=trusted)[0]) == "AA"
        for cert, key in ((None, None), (pki["stranger_cert"], pki["stranger_key"])):
            context = client_tls_context(
                str(pki["ca"]), str(cert) if cert else None, str(key) if key else None
            )
            with pytest.raises((MllpClosed, ConnectionError, ssl.SSLError)):
                send(listener.address, [adt("M2")], tls=context)
    assert inbox.get(inbox.list_recent()[0].id) is not None
    assert [r.control_id for r in inbox.list_recent()] == ["M1"]
