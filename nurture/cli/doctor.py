"""`nurture doctor`: the checks a clinic runs before going live, each printed PASS or FAIL with
how to fix it. Exit 0 only when every check passes, 1 when one fails, 2 when the settings or
clinic.yaml cannot even be read.

The checks talk to the real things, with timeouts: Twilio answers an authenticated request,
the SMTP server accepts the login, DNS publishes the DKIM key nurture signs with, and the
database is migrated and has a living worker and beat. Nothing is sent.
"""

from __future__ import annotations

import base64
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from nurture.cli.base import UsageProblem, cli, settings_or_exit

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from nurture.config.clinic import Clinic
    from nurture.config.settings import Settings

# Long enough for a far provider, short enough that a hung one does not hang the doctor.
NETWORK_TIMEOUT = 10.0
MIN_SECRET_LENGTH = 32
# Secrets that appear in examples and tutorials; a clinic that copied one has none.
KNOWN_SECRETS = frozenset({"changeme", "change-me", "secret", "secret-key", "dev", "test", "…"})
# The digest task runs every minute (workers/app.py); a beat that missed five is not running.
BEAT_ALIVE_WITHIN = timedelta(minutes=5)
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})

# The TXT records of a DNS name, each as one string; raises LookupError saying why not.
TxtLookup = Callable[[str], list[str]]


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    said: str  # what was found
    fix: str = ""  # how to fix it (failures)

    def lines(self) -> list[str]:
        lines = [f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {self.said}"]
        if not self.passed and self.fix:
            lines.append(f"      fix: {self.fix}")
        return lines


def passed(name: str, said: str) -> Check:
    return Check(name, True, said)


def failed(name: str, said: str, fix: str) -> Check:
    return Check(name, False, said, fix)


# --- settings ---


def check_public_url(settings: Settings) -> Check:
    name = "public URL"
    if not settings.public_url.startswith("https://"):
        return failed(
            name,
            f"NURTURE_PUBLIC_URL is {settings.public_url}",
            "set NURTURE_PUBLIC_URL to the https address leads and staff reach nurture at "
            "(every link in every message points there; one-click unsubscribe needs https)",
        )
    if settings.allow_insecure_public_url:
        return failed(
            name,
            "NURTURE_ALLOW_INSECURE_PUBLIC_URL is set",
            "unset NURTURE_ALLOW_INSECURE_PUBLIC_URL: it is for a test on your own machine",
        )
    return passed(name, settings.public_url)


def check_secret_key(settings: Settings) -> Check:
    name = "secret key"
    fix = (
        "set NURTURE_SECRET_KEY to a long random value, the same in every process, e.g. "
        "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
    )
    if settings.secret_key is None:
        return failed(name, "NURTURE_SECRET_KEY is not set (a per-machine key in var/)", fix)
    key = settings.secret_key.get_secret_value()
    if key.strip().lower() in KNOWN_SECRETS or len(set(key)) < 8:
        return failed(name, "NURTURE_SECRET_KEY is an example value", fix)
    if len(key) < MIN_SECRET_LENGTH:
        return failed(
            name, f"NURTURE_SECRET_KEY has {len(key)} characters (at least 32 needed)", fix
        )
    return passed(name, f"set, {len(key)} characters")


def check_postal_address(clinic: Clinic) -> Check:
    name = "postal address"
    if "address" in clinic.placeholders:
        return failed(
            name,
            f"clinic.yaml's address is the example {clinic.address!r}",
            "write the clinic's real postal address in config/clinic.yaml (CAN-SPAM puts it in "
            "every marketing e-mail) and remove `address` from `placeholders`",
        )
    return passed(name, clinic.address)


def check_on_call_phone(clinic: Clinic) -> Check:
    name = "on-call phone"
    if "on_call_phone" in clinic.placeholders:
        return failed(
            name,
            f"clinic.yaml's on_call_phone is the example {clinic.on_call_phone}",
            "write the on-call clinician's real mobile in config/clinic.yaml (crisis pages go "
            "there) and remove `on_call_phone` from `placeholders`",
        )
    return passed(name, "set")


def check_new_lead_notices(clinic: Clinic) -> Check:
    name = "new-lead notices"
    notices = clinic.new_lead_notices
    if not notices.recipients:
        return failed(
            name,
            "nobody at the clinic is told of new leads",
            "list staff e-mail addresses and/or mobile numbers under new_lead_notices "
            "(email: [...], sms: [...]) in config/clinic.yaml",
        )
    return passed(name, f"{len(notices.email)} e-mail address(es), {len(notices.sms)} number(s)")


# --- providers ---


def check_twilio(settings: Settings) -> Check:
    """An authenticated request through the official SDK's HTTP client: list one message
    (sends nothing)."""
    from requests.exceptions import RequestException
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    name = "Twilio"
    if settings.sms_backend != "twilio":
        return failed(
            name,
            f"NURTURE_SMS_BACKEND is {settings.sms_backend}: texts are written to files",
            "set NURTURE_SMS_BACKEND=twilio with TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and "
            "NURTURE_TWILIO_FROM (or NURTURE_TWILIO_MESSAGING_SERVICE_SID)",
        )
    client = Client(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        http_client=TwilioHttpClient(timeout=min(settings.twilio_timeout, NETWORK_TIMEOUT)),
    )
    messages = (
        f"{settings.twilio_api_url}/2010-04-01/Accounts/{settings.twilio_account_sid}/Messages.json"
    )
    try:
        response = client.request("GET", messages, params={"PageSize": 1})
    except RequestException as error:
        return failed(
            name,
            f"no answer from {settings.twilio_api_url}: {type(error).__name__}",
            "check NURTURE_TWILIO_API_URL (normally https://api.twilio.com) and that this "
            "machine can reach it (firewall, proxy)",
        )
    if response.status_code == 401:
        return failed(
            name,
            f"{settings.twilio_api_url} refused the credentials (401)",
            "copy the Account SID and Auth Token from the Twilio console into "
            "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
        )
    if response.status_code != 200:
        return failed(
            name,
            f"{settings.twilio_api_url} answered {response.status_code}",
            "check TWILIO_ACCOUNT_SID (the account must exist) and Twilio's status page",
        )
    return passed(name, f"{settings.twilio_api_url} accepted the credentials")


def check_smtp(settings: Settings) -> Check:
    """Connect, EHLO, STARTTLS and log in as NURTURE_SMTP_URL says; QUIT before any MAIL."""
    from nurture.transports.smtp import parse_smtp_url

    name = "SMTP"
    if settings.email_backend != "smtp":
        return failed(
            name,
            f"NURTURE_EMAIL_BACKEND is {settings.email_backend}: e-mail is written to files",
            "set NURTURE_EMAIL_BACKEND=smtp and NURTURE_SMTP_URL, e.g. "
            "smtp://user:password@smtp.example.org:587?starttls=true",
        )
    try:
        endpoint = parse_smtp_url(settings.smtp_url.get_secret_value())
    except ValueError as error:
        return failed(name, str(error), "fix NURTURE_SMTP_URL")
    where = f"{endpoint.host}:{endpoint.port}"
    encrypted = endpoint.implicit_tls or endpoint.starttls
    if endpoint.username and not encrypted and endpoint.host not in LOOPBACK:
        return failed(
            name,
            f"the password for {where} would cross the network unencrypted",
            "add ?starttls=true to NURTURE_SMTP_URL (port 587) or use smtps:// (port 465)",
        )
    timeout = min(settings.smtp_timeout, NETWORK_TIMEOUT)
    context = ssl.create_default_context()
    smtp: smtplib.SMTP | None = None
    step = "connect"
    try:
        if endpoint.implicit_tls:
            smtp = smtplib.SMTP_SSL(endpoint.host, endpoint.port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(endpoint.host, endpoint.port, timeout=timeout)
        step = "EHLO"
        smtp.ehlo()
        if endpoint.starttls:
            step = "STARTTLS"
            smtp.starttls(context=context)
            smtp.ehlo()
        if endpoint.username:
            step = "AUTH"
            smtp.login(endpoint.username, endpoint.password or "")
    except smtplib.SMTPAuthenticationError as error:
        return failed(
            name,
            f"{where} refused the login ({error.smtp_code})",
            "check the user name and password in NURTURE_SMTP_URL (URL-encode @ : / in them)",
        )
    except smtplib.SMTPNotSupportedError as error:
        return failed(
            name,
            f"{where} does not offer {step}: {error}",
            "most servers offer AUTH only after STARTTLS: add ?starttls=true (or drop the "
            "user from the URL if the server needs no login)",
        )
    except (OSError, smtplib.SMTPException) as error:
        return failed(
            name,
            f"{step} with {where} failed: {type(error).__name__}: {error}",
            "check the host and port of NURTURE_SMTP_URL, TLS (smtps:// or ?starttls=true) "
            "and that this machine can reach it",
        )
    finally:
        if smtp is not None:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
    how = "TLS, " if encrypted else ""
    login = f"logged in as {endpoint.username}" if endpoint.username else "no login configured"
    return passed(name, f"{where} answered ({how}{login})")


# --- DKIM ---


def dns_txt_lookup(
    nameservers: list[str] | None = None, port: int = 53, timeout: float = 5.0
) -> TxtLookup:
    """TXT look-ups through dnspython: the system's resolvers, or the ones given (tests)."""
    import dns.exception
    import dns.resolver

    def lookup(name: str) -> list[str]:
        try:
            # Built here: a machine without /etc/resolv.conf fails this check, not the doctor.
            resolver = dns.resolver.Resolver(configure=nameservers is None)
            if nameservers is not None:
                resolver.nameservers = nameservers
                resolver.port = port
            resolver.lifetime = timeout
            answer = resolver.resolve(name, "TXT")
        except dns.resolver.NXDOMAIN:
            return []
        except dns.resolver.NoAnswer:
            return []
        except dns.exception.DNSException as error:
            raise LookupError(f"{type(error).__name__}: {error}") from None
        return [b"".join(record.strings).decode("ascii", "replace") for record in answer]

    return lookup


def dkim_record(private_key_pem: bytes) -> str:
    """The TXT value to publish for a PEM private key (RFC 6376 §3.6.1)."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_key_pem, password=None)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"


def _tags(record: str) -> dict[str, str]:
    tags = {}
    for part in record.split(";"):
        key, _, value = part.partition("=")
        if key.strip():
            tags[key.strip()] = "".join(value.split())
    return tags


def check_dkim(settings: Settings, lookup: TxtLookup) -> Check:
    from nurture.config.yamlconf import ConfigError
    from nurture.transports.smtp import DkimSigner

    name = "DKIM"
    if not (settings.dkim_selector or settings.dkim_domain or settings.dkim_private_key):
        return passed(
            name,
            "nurture does not sign (NURTURE_DKIM_* unset): make sure your mail provider "
            "signs for your domain, as Gmail and Yahoo require",
        )
    if settings.dkim_private_key is None:  # the settings insist on all three
        return failed(name, "NURTURE_DKIM_PRIVATE_KEY is not set", "set all three NURTURE_DKIM_*")
    try:
        signer = DkimSigner.load(
            settings.dkim_selector, settings.dkim_domain, Path(settings.dkim_private_key)
        )
    except ConfigError as error:
        return failed(name, str(error), "point NURTURE_DKIM_PRIVATE_KEY at the PEM key file")
    wanted = dkim_record(signer.private_key)
    record_name = f"{signer.selector}._domainkey.{signer.domain}"
    publish = f"publish a TXT record {record_name} with the value: {wanted}"
    try:
        found = lookup(record_name)
    except LookupError as error:
        return failed(name, f"could not ask DNS for {record_name} ({error})", publish)
    keys = [_tags(record) for record in found if _tags(record).get("p") is not None]
    if not keys:
        return failed(name, f"{record_name} has no DKIM key in DNS", publish)
    expected = _tags(wanted)["p"]
    if not any(tags.get("p") == expected for tags in keys):
        return failed(
            name,
            f"{record_name} publishes a different key than NURTURE_DKIM_PRIVATE_KEY",
            f"replace the record: {publish} (or point NURTURE_DKIM_PRIVATE_KEY at the key "
            "that belongs to this selector)",
        )
    return passed(name, f"{record_name} publishes the key nurture signs with")


# --- the database ---


def check_migrations(engine: Engine) -> Check:
    from nurture.db import migrations

    name = "migrations"
    head = migrations.head_revision()
    current = migrations.current_revision(engine)
    if current != head:
        return failed(
            name,
            f"the database is at {current or 'no revision'}, the code at {head}",
            "run `nurture db upgrade` (with the same NURTURE_DATABASE_URL)",
        )
    return passed(name, f"the database is at {head}")


def check_worker(engine: Engine, now: datetime) -> Check:
    from sqlalchemy.orm import Session

    from nurture import ops

    name = "worker"
    with Session(engine) as session:
        alive = ops.workers_alive(session, now)
    if not alive:
        return failed(
            name,
            "no worker has written a heartbeat lately",
            "start one: `celery -A workers worker -Q dispatch,email,sms` (or `nurture run`)",
        )
    return passed(name, ", ".join(w.hostname for w in alive))


def check_beat(engine: Engine, now: datetime) -> Check:
    from sqlalchemy.orm import Session

    from nurture.db.models import BeatTick
    from nurture.leads import notices

    name = "beat"
    with Session(engine) as session:
        tick = session.get(BeatTick, notices.DIGEST_TASK)
    if tick is None or tick.last_run_at < now - BEAT_ALIVE_WITHIN:
        last = f"last ran {tick.last_run_at:%Y-%m-%d %H:%M} UTC" if tick else "never ran"
        return failed(
            name,
            f"the beat's {notices.DIGEST_TASK} task {last}",
            "start exactly one beat: `celery -A workers beat` (or `nurture run`), with a worker",
        )
    return passed(name, f"its tasks ran at {tick.last_run_at:%H:%M:%S} UTC")


def database_checks(settings: Settings, now: datetime) -> list[Check]:
    from sqlalchemy.exc import SQLAlchemyError

    from nurture.db.engine import make_engine

    engine = make_engine(settings.resolved_database_url)
    try:
        checks = [check_migrations(engine)]
        if not checks[0].passed:
            return checks  # the tables the next checks read may not be there
        return [*checks, check_worker(engine, now), check_beat(engine, now)]
    except SQLAlchemyError as error:
        reason = getattr(error, "orig", None) or error
        return [
            failed(
                "database",
                f"cannot read it: {type(reason).__name__}: {reason}",
                "check NURTURE_DATABASE_URL and that the database is running",
            )
        ]
    finally:
        engine.dispose()


def run_checks(
    settings: Settings, clinic: Clinic, *, now: datetime, lookup: TxtLookup | None = None
) -> list[Check]:
    return [
        check_public_url(settings),
        check_secret_key(settings),
        check_postal_address(clinic),
        check_on_call_phone(clinic),
        check_new_lead_notices(clinic),
        check_twilio(settings),
        check_smtp(settings),
        check_dkim(settings, lookup or dns_txt_lookup()),
        *database_checks(settings, now),
    ]


@cli.command()
def doctor() -> None:
    """Check the settings for going live; exit 0 only when every check passes."""
    from nurture import clock
    from nurture.config.clinic import load_clinic
    from nurture.config.yamlconf import ConfigError

    settings = settings_or_exit()
    try:
        clinic = load_clinic(settings.config_dir)
    except ConfigError as error:
        raise UsageProblem(f"configuration error:\n{error}") from None
    checks = run_checks(settings, clinic, now=clock.utcnow())
    for check in checks:
        for line in check.lines():
            click.echo(line)
    failures = [check for check in checks if not check.passed]
    click.echo(
        f"\n{len(checks) - len(failures)} of {len(checks)} checks passed"
        + (": fix each FAIL above, then run `nurture doctor` again." if failures else ".")
    )
    raise SystemExit(1 if failures else 0)
