"""`nurture doctor` against real parts: the Twilio stand-in over the official SDK, aiosmtpd with
and without AUTH, a DNS server on loopback for DKIM, and databases with and without current
migrations (PostgreSQL and SQLite)."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from nurture import clock, ops
from nurture.cli import cli, doctor
from nurture.config.clinic import Clinic, load_clinic
from nurture.config.settings import Settings, get_settings
from nurture.db import migrations
from nurture.db.engine import make_engine
from nurture.leads import notices
from nurture.runtime import build_services
from tests.conftest import REPO, SettingsFactory
from tests.support.dns_standin import DnsStandIn
from tests.support.smtp_server import SmtpServer, free_port
from tests.support.twilio_standin import TwilioStandIn

SELECTOR, DOMAIN = "nurture1", "kiidaho.example"
RECORD = f"{SELECTOR}._domainkey.{DOMAIN}"


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def config_dir(basic_config_dir: Path, tmp_path: Path) -> Path:
    """The test configuration (real address), telling a front desk of new leads."""
    config = tmp_path / "config"
    shutil.copytree(basic_config_dir, config)
    clinic = yaml.safe_load((config / "clinic.yaml").read_text())
    clinic["new_lead_notices"]["email"] = ["frontdesk@kiidaho.example"]
    (config / "clinic.yaml").write_text(yaml.safe_dump(clinic))
    return config


@pytest.fixture
def ready(
    make_settings: SettingsFactory,
    config_dir: Path,
    twilio: TwilioStandIn,
    smtp_server: SmtpServer,
) -> Settings:
    """Settings a clinic could go live with, pointing at the stand-ins; a worker and a beat."""
    settings = make_settings(
        config_dir=config_dir,
        email_backend="smtp",
        smtp_url=smtp_server.url,
        allow_insecure_public_url=False,  # tests/conftest.py allows it for every other test
        **twilio.settings(),
    )
    alive(settings)
    return settings


def alive(settings: Settings, *, beat_ago: timedelta = timedelta(seconds=30)) -> None:
    services = build_services(settings)
    try:
        with services.sessions.begin() as session:
            now = clock.utcnow()
            ops.record_heartbeat(session, hostname="celery@w1", pid=1, queues="dispatch", now=now)
            notices.record_beat_tick(session, notices.DIGEST_TASK, now=now - beat_ago)
    finally:
        services.close()


def checks(settings: Settings, **kwargs: Any) -> dict[str, doctor.Check]:
    clinic = load_clinic(settings.config_dir)
    found = doctor.run_checks(settings, clinic, now=clock.utcnow(), **kwargs)
    return {check.name: check for check in found}


def failures(settings: Settings, **kwargs: Any) -> dict[str, doctor.Check]:
    return {name: c for name, c in checks(settings, **kwargs).items() if not c.passed}


def env_of(settings: Settings) -> dict[str, str | None]:
    """The environment a clinic would set for these settings."""
    return {
        "NURTURE_ALLOW_INSECURE_PUBLIC_URL": None,  # unset
        "NURTURE_DATABASE_URL": settings.database_url,
        "NURTURE_VAR_DIR": str(settings.var_dir),
        "NURTURE_CONFIG_DIR": str(settings.config_dir),
        "NURTURE_TEMPLATES_DIR": str(settings.templates_dir),
        "NURTURE_PUBLIC_URL": settings.public_url,
        "NURTURE_SECRET_KEY": settings.secret_key.get_secret_value() if settings.secret_key else "",
        "NURTURE_SMS_BACKEND": settings.sms_backend,
        "TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
        "TWILIO_AUTH_TOKEN": settings.twilio_auth_token.get_secret_value(),
        "NURTURE_TWILIO_FROM": settings.twilio_from,
        "NURTURE_TWILIO_API_URL": settings.twilio_api_url,
        "NURTURE_EMAIL_BACKEND": settings.email_backend,
        "NURTURE_SMTP_URL": settings.smtp_url.get_secret_value(),
    }


def run_doctor(env: dict[str, str | None]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["doctor"], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


# --- the whole command ---


def test_a_ready_clinic_passes_and_exits_0(ready: Settings) -> None:
    assert failures(ready) == {}
    code, output = run_doctor(env_of(ready))
    assert code == 0, output
    for name in ("public URL", "secret key", "Twilio", "SMTP", "DKIM", "migrations", "worker"):
        assert f"PASS  {name}:" in output
    assert "FAIL" not in output
    assert "twilio-test-token" not in output  # secrets never printed


def test_each_failure_is_printed_with_its_fix_and_exits_1(
    ready: Settings, make_settings: SettingsFactory, twilio: TwilioStandIn
) -> None:
    env = {**env_of(ready), "TWILIO_AUTH_TOKEN": "wrong-token"}
    code, output = run_doctor(env)
    assert code == 1, output
    assert "FAIL  Twilio:" in output and "refused the credentials (401)" in output
    assert "fix: copy the Account SID and Auth Token" in output
    assert "wrong-token" not in output
    assert "checks passed: fix each FAIL above" in output


def test_bad_settings_or_clinic_yaml_exit_2(ready: Settings, tmp_path: Path) -> None:
    code, output = run_doctor({**env_of(ready), "NURTURE_DISPATCH_INTERVAL": "often"})
    assert code == 2, output
    assert "NURTURE_DISPATCH_INTERVAL" in output
    broken = tmp_path / "broken"
    shutil.copytree(ready.config_dir, broken)
    clinic = yaml.safe_load((broken / "clinic.yaml").read_text())
    clinic["new_lead_notices"]["sms"] = ["555-0142"]
    (broken / "clinic.yaml").write_text(yaml.safe_dump(clinic))
    code, output = run_doctor({**env_of(ready), "NURTURE_CONFIG_DIR": str(broken)})
    assert code == 2, output
    assert "clinic.yaml" in output and "E.164" in output


# --- settings and clinic.yaml ---


def test_production_settings(make_settings: SettingsFactory, ready: Settings) -> None:
    local = make_settings(public_url="http://127.0.0.1:8000", secret_key=None)
    found = failures(local)
    assert "NURTURE_PUBLIC_URL is http://127.0.0.1:8000" in found["public URL"].said
    assert "not set" in found["secret key"].said
    assert "NURTURE_SMS_BACKEND is outbox" in found["Twilio"].said
    assert "NURTURE_EMAIL_BACKEND is outbox" in found["SMTP"].said
    for weak, said in (("changeme", "example value"), ("aB3$xY7!qW9@", "12 characters")):
        check = doctor.check_secret_key(ready.model_copy(update={"secret_key": _s(weak)}))
        assert said in check.said and not check.passed
    insecure = ready.model_copy(update={"allow_insecure_public_url": True})
    assert not doctor.check_public_url(insecure).passed


def _s(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)


def test_placeholders_and_nobody_to_tell(basic_config_dir: Path) -> None:
    shipped: Clinic = load_clinic(REPO / "config")  # the example address, nobody listed
    assert "example" in doctor.check_postal_address(shipped).said
    assert "remove `address` from `placeholders`" in doctor.check_postal_address(shipped).fix
    assert not doctor.check_on_call_phone(shipped).passed
    assert not doctor.check_new_lead_notices(shipped).passed
    real = load_clinic(basic_config_dir)
    assert doctor.check_postal_address(real).passed


# --- Twilio ---


def test_twilio_that_does_not_answer(ready: Settings) -> None:
    gone = ready.model_copy(update={"twilio_api_url": f"http://127.0.0.1:{free_port()}"})
    check = doctor.check_twilio(gone)
    assert not check.passed and "no answer from" in check.said
    wrong_account = ready.model_copy(update={"twilio_account_sid": "AC" + "2" * 32})
    assert not doctor.check_twilio(wrong_account).passed


# --- SMTP ---


class _Accepting:
    async def handle_DATA(self, *_args: Any) -> str:  # noqa: N802
        raise AssertionError("the doctor must send no mail")


@pytest.fixture
def smtp_with_auth() -> Iterator[int]:
    """aiosmtpd asking for a login (plain, on loopback: tests have no certificate)."""

    def authenticate(_server: Any, _session: Any, _envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"desk", b"pw")
        return AuthResult(success=ok, handled=False)

    port = free_port()
    controller = Controller(
        _Accepting(),
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    yield port
    controller.stop()


def test_smtp_login_with_auth(ready: Settings, smtp_with_auth: int) -> None:
    def at(url: str) -> doctor.Check:
        return doctor.check_smtp(ready.model_copy(update={"smtp_url": _s(url)}))

    good = at(f"smtp://desk:pw@127.0.0.1:{smtp_with_auth}")
    assert good.passed, good
    assert "logged in as desk" in good.said
    wrong = at(f"smtp://desk:nope@127.0.0.1:{smtp_with_auth}")
    assert not wrong.passed and "refused the login (535)" in wrong.said
    assert "nope" not in wrong.said + wrong.fix


def test_smtp_without_auth(ready: Settings, smtp_server: SmtpServer) -> None:
    def at(url: str) -> doctor.Check:
        return doctor.check_smtp(ready.model_copy(update={"smtp_url": _s(url)}))

    plain = at(smtp_server.url)
    assert plain.passed and "no login configured" in plain.said
    wants_login = at(f"smtp://desk:pw@127.0.0.1:{smtp_server.port}")
    assert not wants_login.passed and "does not offer AUTH" in wants_login.said
    wants_tls = at(f"smtp://127.0.0.1:{smtp_server.port}?starttls=true")
    assert not wants_tls.passed and "STARTTLS" in wants_tls.said
    nobody = at(f"smtp://127.0.0.1:{free_port()}")
    assert not nobody.passed and "connect with" in nobody.said
    cleartext = at("smtp://desk:pw@smtp.kiidaho.example:25")
    assert not cleartext.passed and "unencrypted" in cleartext.said
    assert smtp_server.received == []


# --- DKIM ---


def _key(path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture
def dns() -> Iterator[DnsStandIn]:
    with DnsStandIn() as server:
        yield server


def test_dkim_key_against_its_dns_record(ready: Settings, tmp_path: Path, dns: DnsStandIn) -> None:
    key = _key(tmp_path / "dkim.pem")
    signing = ready.model_copy(
        update={"dkim_selector": SELECTOR, "dkim_domain": DOMAIN, "dkim_private_key": key}
    )
    lookup = doctor.dns_txt_lookup(["127.0.0.1"], port=dns.port, timeout=3)
    published = doctor.dkim_record(key.read_bytes())

    missing = doctor.check_dkim(signing, lookup)
    assert not missing.passed and "no DKIM key in DNS" in missing.said
    assert published in missing.fix and RECORD in missing.fix

    dns.records[RECORD] = [published]  # long enough to be split into 255-byte strings
    assert doctor.check_dkim(signing, lookup).passed
    assert dns.questions[-1] == RECORD

    other = doctor.dkim_record(_key(tmp_path / "other.pem").read_bytes())
    dns.records[RECORD] = [other]
    wrong = doctor.check_dkim(signing, lookup)
    assert not wrong.passed and "different key" in wrong.said and published in wrong.fix


def test_dkim_without_dns_says_what_to_publish(ready: Settings, tmp_path: Path) -> None:
    key = _key(tmp_path / "dkim.pem")
    signing = ready.model_copy(
        update={"dkim_selector": SELECTOR, "dkim_domain": DOMAIN, "dkim_private_key": key}
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # takes, never answers
        silent.bind(("127.0.0.1", 0))
        lookup = doctor.dns_txt_lookup(["127.0.0.1"], port=silent.getsockname()[1], timeout=1)
        check = doctor.check_dkim(signing, lookup)
    assert not check.passed and "could not ask DNS" in check.said
    assert doctor.dkim_record(key.read_bytes()) in check.fix
    unreadable = signing.model_copy(update={"dkim_private_key": tmp_path / "absent.pem"})
    assert "cannot read it" in doctor.check_dkim(unreadable, lookup).said


# --- the database ---


def test_a_database_behind_the_code(ready: Settings, tmp_path: Path) -> None:
    old = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    migrations.upgrade(old, "0015")
    found = failures(ready.model_copy(update={"database_url": old}))
    assert "the database is at 0015" in found["migrations"].said
    assert "nurture db upgrade" in found["migrations"].fix
    empty = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    make_engine(empty).dispose()
    code, output = run_doctor({**env_of(ready), "NURTURE_DATABASE_URL": empty})
    assert code == 1, output
    assert "FAIL  migrations: the database is at no revision" in output


def test_no_worker_and_a_stopped_beat(ready: Settings) -> None:
    alive(ready, beat_ago=timedelta(minutes=6))
    found = failures(ready)
    assert set(found) == {"beat"}
    assert "celery -A workers beat" in found["beat"].fix
    later = clock.utcnow() + timedelta(minutes=10)
    clinic = load_clinic(ready.config_dir)
    by_name = {c.name: c for c in doctor.run_checks(ready, clinic, now=later)}
    assert not by_name["worker"].passed and "no worker" in by_name["worker"].said
