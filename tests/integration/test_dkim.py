"""DKIM (issue 13 §4): with NURTURE_DKIM_* set, every e-mail the SMTP transport sends is signed;
the message as aiosmtpd received it verifies against the public key published for the
selector, with List-Unsubscribe and List-Unsubscribe-Post among the signed headers."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dkim  # type: ignore[import-untyped]
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from freezegun import freeze_time
from sqlalchemy import update

from nurture import clock
from nurture.cli import cli
from nurture.config.settings import Settings, get_settings
from nurture.db.models import Channel, Message, Purpose
from nurture.runtime import build_services
from nurture.transports import OutgoingEmail
from nurture.transports.smtp import DkimSigner, SmtpTransport, parse_smtp_url
from tests.conftest import REPO, SettingsFactory
from tests.support.factories import claim_and_send_all, sign_up
from tests.support.smtp_server import Received, SmtpServer

SELECTOR = "nurture2026"
DOMAIN = "clinic.example"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def key_file(key: rsa.RSAPrivateKey, tmp_path: Path) -> Path:
    path = tmp_path / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return path


def dns_for(key: rsa.RSAPrivateKey) -> object:
    """A dnsfunc answering the selector's TXT record, as the clinic publishes it."""
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(spki)

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode(), name
        return record

    return dnsfunc


def signature_tags(received: Received) -> dict[str, str]:
    header = received.raw_header("DKIM-Signature").decode()
    value = re.sub(r"\s+", "", header.split(":", 1)[1])
    return dict(tag.split("=", 1) for tag in value.split(";") if tag)


@pytest.fixture
def daytime() -> Iterator[None]:
    # 11:00 in Boise on a Tuesday: inside every send window, whatever time the test runs.
    with freeze_time("2026-03-03 18:00:00", tick=True):
        yield


def test_every_email_sent_is_signed_and_verifies(
    make_settings: SettingsFactory,
    smtp_server: SmtpServer,
    key: rsa.RSAPrivateKey,
    key_file: Path,
    daytime: None,
) -> None:
    settings = make_settings(
        email_backend="smtp",
        smtp_url=smtp_server.url,
        email_from=f"Clinic <care@{DOMAIN}>",
        dkim_selector=SELECTOR,
        dkim_domain=DOMAIN,
        dkim_private_key=key_file,
    )
    services = build_services(settings)
    try:
        lead = sign_up(services)
        claim_and_send_all(services)  # the welcome (care)
        with services.sessions.begin() as session:
            session.execute(
                update(Message)
                .where(Message.lead_id == lead, Message.purpose == Purpose.MARKETING)
                .where(Message.channel == Channel.EMAIL)
                .values(due_at=clock.utcnow() - timedelta(minutes=1))
            )
        claim_and_send_all(services)  # the follow-up (marketing, with List-Unsubscribe)
    finally:
        services.close()
    care, marketing = smtp_server.wait_for(2)
    dnsfunc = dns_for(key)
    for received in (care, marketing):
        assert dkim.verify(received.raw, dnsfunc=dnsfunc), received.raw[:400]
        tags = signature_tags(received)
        assert (tags["d"], tags["s"], tags["c"], tags["a"]) == (
            DOMAIN,
            SELECTOR,
            "relaxed/simple",
            "rsa-sha256",
        )
        signed = set(tags["h"].lower().split(":"))
        assert {
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "mime-version",
            "content-type",
            "list-unsubscribe",
            "list-unsubscribe-post",
        } <= signed
    assert marketing.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Changing a signed header on the way breaks the signature: the unsubscribe link included.
    head, body = marketing.raw.split(b"\r\n\r\n", 1)
    tampered = re.sub(rb"(List-Unsubscribe: <https://)", rb"\1evil.example/", head)
    assert tampered != head
    assert not dkim.verify(tampered + b"\r\n\r\n" + body, dnsfunc=dnsfunc)
    # Adding one the care e-mail did not have breaks it too (signed as absent).
    added = b"List-Unsubscribe: <https://evil.example/u>\r\n" + care.raw
    assert not dkim.verify(added, dnsfunc=dnsfunc)


def test_the_transport_signs_non_ascii_subjects_and_names(
    smtp_server: SmtpServer, key: rsa.RSAPrivateKey, key_file: Path
) -> None:
    transport = SmtpTransport(
        parse_smtp_url(smtp_server.url),
        sender=f"Clínica Ánimo <care@{DOMAIN}>",
        reply_to=f"front-desk@{DOMAIN}",
        timeout=10,
        dkim_signer=DkimSigner.load(SELECTOR, DOMAIN, key_file),
    )
    try:
        message_id = transport.send(
            OutgoingEmail(
                to="jose.nunez@example.com",
                subject="Su consulta — mañana a las 10:00",
                text="Hola José,\n\nNos vemos mañana.\n",
                html="<p>Hola José,</p><p>Nos vemos mañana.</p>",
                reference="m-1",
            )
        )
    finally:
        transport.close()
    (received,) = smtp_server.wait_for(1)
    assert received.message["Message-ID"] == message_id
    assert received.rcpt_tos == ["jose.nunez@example.com"]
    assert received.mail_from == f"care@{DOMAIN}"
    assert dkim.verify(received.raw, dnsfunc=dns_for(key))


def _serve(tmp_path: Path, **dkim_env: str) -> tuple[int, str]:
    env = {
        "NURTURE_CONFIG_DIR": str(REPO / "config"),
        "NURTURE_TEMPLATES_DIR": str(REPO / "templates"),
        "NURTURE_VAR_DIR": str(tmp_path),
        **dkim_env,
    }
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["serve", "--port", "1"], env=env)
    finally:
        get_settings.cache_clear()
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        ("missing", "cannot read it"),
        ("not a key", "not an unencrypted PEM private key"),
        ("not RSA", "must be an RSA key of at least 1024 bits"),
    ],
)
def test_a_key_that_cannot_sign_stops_the_start(
    tmp_path: Path, problem: str, expected: str
) -> None:
    path = tmp_path / "dkim.pem"
    if problem == "not a key":
        path.write_text("-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n")
    elif problem == "not RSA":
        path.write_bytes(
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    code, output = _serve(
        tmp_path,
        NURTURE_DKIM_SELECTOR=SELECTOR,
        NURTURE_DKIM_DOMAIN=DOMAIN,
        NURTURE_DKIM_PRIVATE_KEY=str(path),
    )
    assert code == 2, output
    assert "NURTURE_DKIM_PRIVATE_KEY" in output and expected in output, output
    assert "Traceback" not in output


def test_dkim_needs_all_three_settings(tmp_path: Path, key_file: Path) -> None:
    code, output = _serve(tmp_path, NURTURE_DKIM_PRIVATE_KEY=str(key_file))
    assert code == 2, output
    assert "NURTURE_DKIM_SELECTOR" in output and "NURTURE_DKIM_DOMAIN" in output, output
    with pytest.raises(ValueError, match="DKIM needs"):
        Settings(dkim_selector=SELECTOR)
