"""What every benchmark needs: a fresh database, a broker, the Twilio stand-in, an SMTP server,
workers as real processes, fast bulk inserts of due messages, and lateness statistics."""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import redis
from sqlalchemy import func, insert, select, text

from nurture import clock
from nurture.config.settings import Settings
from nurture.db.models import Channel, ConsentEvent, Lead, Message, MessageStatus, Purpose
from nurture.runtime import Services, build_services
from tests.conftest import PG_ADMIN_URL, REPO, PostgresDatabases
from tests.support.daytime import zone_where_it_is_daytime
from tests.support.smtp_server import SmtpServer
from tests.support.stack import Stack
from tests.support.twilio_standin import TwilioStandIn

PENDING = (MessageStatus.SCHEDULED, MessageStatus.QUEUED, MessageStatus.SENDING)
# A Redis database of its own: the test suite uses 13 to 15.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
os.environ["BENCH_REDIS_URL"] = REDIS_URL
os.environ["NURTURE_ALLOW_INSECURE_PUBLIC_URL"] = "1"  # the bench stack is http on loopback


@dataclass
class Env:
    database_url: str
    redis_url: str
    twilio: TwilioStandIn
    smtp: SmtpServer
    directory: Path
    services: Services
    stack: Stack

    def worker_env(self, **more: str) -> dict[str, str]:
        return {
            "NURTURE_EMAIL_BACKEND": "smtp",
            "NURTURE_SMTP_URL": self.smtp.url,
            "NURTURE_SMS_BACKEND": "twilio",
            "TWILIO_ACCOUNT_SID": self.twilio.account_sid,
            "TWILIO_AUTH_TOKEN": self.twilio.auth_token,
            "NURTURE_TWILIO_FROM": "+12085550100",
            "NURTURE_TWILIO_API_URL": self.twilio.url,
            "NURTURE_LOG_FORMAT": "json",
            # The stand-in has no sending limit: measure the pipeline, not a long code's 1/s.
            "NURTURE_SMS_PER_SECOND": "0",
            **more,
        }


@contextmanager
def environment(name: str, *, config_dir: Path | None = None) -> Iterator[Env]:
    databases = PostgresDatabases(PG_ADMIN_URL)
    databases.template = f"bench_tpl_{os.getpid()}"
    databases.build_template()
    url = databases.create()
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    directory = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    (directory / "logs").mkdir()
    services = build_services(
        Settings(
            database_url=url,
            config_dir=config_dir or REPO / "config",
            templates_dir=REPO / "templates",
            var_dir=directory / "var",
            secret_key="bench-secret-key",
        )
    )
    twilio = TwilioStandIn("AC" + "2" * 32, "bench-token").start()
    smtp = SmtpServer().start()
    stack = Stack(url, REDIS_URL, directory / "logs", directory / "var")
    env = Env(url, REDIS_URL, twilio, smtp, directory, services, stack)
    try:
        yield env
    finally:
        stack.stop()
        smtp.stop()
        twilio.stop()
        services.close()
        client.flushdb()
        client.close()
        databases.close()
        shutil.rmtree(directory, ignore_errors=True)


def insert_due_messages(
    services: Services,
    count: int,
    *,
    due_at: datetime | list[datetime],
    sms_share: float = 0.5,
    chunk: int = 5000,
) -> None:
    """Leads with consent, each with one care message due at ``due_at`` (bulk insert)."""
    zone = zone_where_it_is_daytime()
    now = clock.utcnow()
    for start in range(0, count, chunk):
        leads: list[dict[str, Any]] = []
        consents: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        for n in range(start, min(count, start + chunk)):
            lead_id = uuid.uuid4()
            sms = n % round(1 / sms_share) == 0 if sms_share else False
            leads.append(
                {
                    "id": lead_id,
                    "first_name": f"Bench{n}",
                    "last_name": "",
                    "email": f"b{n}@example.com",
                    "phone": f"+1208{5550000 + n:07d}",
                    "timezone": zone,
                    "stage": "signed_up",
                    "consult_version": 0,
                    "attributes": {},
                    "created_at": now,
                    "updated_at": now,
                }
            )
            for channel in (Channel.EMAIL, Channel.SMS):
                consents.append(
                    {
                        "lead_id": lead_id,
                        "channel": channel,
                        "purpose": Purpose.CARE,
                        "action": "granted",
                        "source": "api",
                        "evidence": {},
                        "occurred_at": now,
                    }
                )
            due = due_at[n] if isinstance(due_at, list) else due_at
            messages.append(
                {
                    "lead_id": lead_id,
                    "step_key": "bench",
                    "channel": Channel.SMS if sms else Channel.EMAIL,
                    "purpose": Purpose.CARE,
                    "template_key": "help-reply" if sms else "welcome",
                    "due_at": due,
                    "status": MessageStatus.SCHEDULED,
                    "status_at": now,
                    "idempotency_key": f"bench:{lead_id}",
                    "created_at": now,
                    "anchor": "enrolled_at",
                    "anchor_version": 0,
                    "attempts": 0,
                    "context": {},
                }
            )
        with services.sessions.begin() as session:
            session.execute(insert(Lead), leads)
            session.execute(insert(ConsentEvent), consents)
            session.execute(insert(Message), messages)


def counts(services: Services) -> dict[str, int]:
    with services.sessions() as session:
        return {
            s.value: int(n)
            for s, n in session.execute(
                select(Message.status, func.count()).group_by(Message.status)
            )
        }


def pending(services: Services) -> int:
    with services.sessions() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Message).where(Message.status.in_(PENDING))
            )
            or 0
        )


def wait_drained(services: Services, *, timeout: float, poll: float = 0.25) -> float:
    """Seconds until no row is pending; raises if it takes longer than ``timeout``."""
    started = time.monotonic()
    while pending(services):
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"still pending after {timeout}s: {counts(services)}")
        time.sleep(poll)
    return time.monotonic() - started


def lateness(services: Services) -> dict[str, float]:
    with services.sessions() as session:
        rows = session.execute(
            select(Message.due_at, Message.sent_at).where(Message.sent_at.is_not(None))
        ).all()
    values = sorted((sent - due).total_seconds() for due, sent in rows if sent is not None)
    if not values:
        return {}

    def pct(p: float) -> float:
        return values[min(len(values) - 1, max(0, round(p * len(values)) - 1))]

    return {
        "p50": pct(0.5),
        "p95": pct(0.95),
        "p99": pct(0.99),
        "max": values[-1],
        "mean": statistics.fmean(values),
        "n": float(len(values)),
    }


def send_window(services: Services) -> tuple[datetime, datetime]:
    with services.sessions() as session:
        first, last = session.execute(
            select(func.min(Message.sent_at), func.max(Message.sent_at))
        ).one()
    if first is None or last is None:
        raise AssertionError("nothing was sent")
    return first, last


def rss_of_children(pid: int) -> int:
    """Resident memory (bytes) of a worker's prefork children, summed."""
    try:
        return sum(
            child.memory_info().rss for child in psutil.Process(pid).children(recursive=True)
        )
    except psutil.NoSuchProcess:
        return 0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process and its living descendants have used so far: what
    a worker costs, which unlike its throughput does not depend on who else shares the cores."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def explain(services: Services, sql: str, params: dict[str, Any]) -> str:
    with services.engine.connect() as connection:
        rows = connection.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}"), params).all()
        connection.rollback()
    return "\n".join(row[0] for row in rows)


def seconds(delta: timedelta) -> float:
    return delta.total_seconds()


def _named_cpu(name: str) -> float:
    """CPU time of every process called ``name``, with the children each has reaped (a
    PostgreSQL backend that exited is counted in its postmaster)."""
    total = 0.0
    for process in psutil.process_iter(["name"]):
        if process.info["name"] != name:
            continue
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


@dataclass
class Census:
    """Where the machine's CPU goes during a measurement: the process under test, and what
    shares the cores with it (PostgreSQL, Redis, this harness with its stand-ins and client).
    A ratio that falls short of a target is either our code or the machine: this says which."""

    pid: int
    size: int
    _start: dict[str, float] | None = None

    def _now(self) -> dict[str, float]:
        own = psutil.Process().cpu_times()
        return {
            "measured": cpu_seconds(self.pid),
            "postgresql": _named_cpu("postgres"),
            "redis": _named_cpu("redis-server"),
            "harness": own.user + own.system,
        }

    def start(self) -> None:
        self._start = self._now()

    def ms_each(self) -> dict[str, float]:
        """CPU milliseconds per item (message, sign-up) for each part, since start()."""
        assert self._start is not None, "start() the census first"
        end = self._now()
        return {part: round(1000 * (end[part] - self._start[part]) / self.size, 2) for part in end}


def cores_needed(ms_each: dict[str, float], rate: float) -> float:
    """The cores every part together would use at ``rate`` items a second."""
    return round(sum(ms_each.values()) * rate / 1000, 2)
