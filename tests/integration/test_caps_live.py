"""Issue 11 §3 on real processes: four Celery worker processes on Redis and PostgreSQL, eight
marketing texts due at once for one lead, and the cap lets exactly three leave."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import httpx2 as httpx
import pytest
import yaml
from sqlalchemy import select

from nurture.config.settings import Settings
from nurture.db.models import Message, MessageStatus
from nurture.runtime import build_services
from tests.conftest import REPO
from tests.support.api import DISCLOSURE_VERSION, INTEGRATION_API_KEY
from tests.support.factories import plan_marketing_texts
from tests.support.processes import wait_until
from tests.support.stack import Stack
from tests.support.twilio_standin import TwilioStandIn

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

CAP = 3
DUE_AT_ONCE = 8


def config_open_all_day(tmp_path: Path) -> Path:
    """The shipped configuration, with marketing texts allowed at any hour on any day, so the
    only thing holding a text back is the cap (live processes cannot freeze the clock)."""
    config = tmp_path / "config"
    shutil.copytree(REPO / "config", config)
    policy_file = config / "policy.yaml"
    policy = yaml.safe_load(policy_file.read_text())
    policy["windows"]["sms"]["marketing"] = {"days": "all", "start": "00:00", "end": "24:00"}
    policy["windows"]["sms"]["optin"] = {"days": "all", "start": "00:00", "end": "24:00"}
    policy["states"] = {}
    policy["caps"]["sms_marketing_per_24h"] = CAP
    policy_file.write_text(yaml.safe_dump(policy))
    return config


def test_four_workers_never_send_more_than_the_cap(
    pg_url: str, redis_url: str, twilio: TwilioStandIn, log_dir: Path, tmp_path: Path
) -> None:
    config = config_open_all_day(tmp_path)
    stack = Stack(
        pg_url,
        redis_url,
        log_dir,
        tmp_path / "var",
        {
            "NURTURE_CONFIG_DIR": str(config),
            "NURTURE_SMS_BACKEND": "twilio",
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "NURTURE_TWILIO_FROM": "+12085550100",
            "NURTURE_TWILIO_API_URL": twilio.url,
            "NURTURE_SMS_PER_SECOND": "0",  # no throttle: every worker may send at once
        },
    )
    services = build_services(
        Settings(
            database_url=pg_url,
            config_dir=config,
            templates_dir=REPO / "templates",
            secret_key="integration-secret-key",
        )
    )
    try:
        stack.web()
        response = httpx.post(
            f"{stack.public_url}/api/v1/signups",
            json={
                "first_name": "Rae",
                "phone": "(208) 555-0177",
                "timezone": "America/Boise",
                "consent": {"sms_marketing": True},
                "consent_text": "I agree to marketing texts.",
                "consent_version": DISCLOSURE_VERSION,
            },
            headers=INTEGRATION_API_KEY,
            timeout=10,
        )
        assert response.status_code == 201, response.text
        lead_id = response.json()["lead_id"]
        stack.worker("worker-a", concurrency=2)
        [optin] = twilio.wait_for(1, timeout=30)
        assert "STOP" in optin.body
        stack.worker("worker-b", beat=False, concurrency=2)

        ids = plan_marketing_texts(services, uuid.UUID(lead_id), DUE_AT_ONCE, prefix="burst")

        def settled() -> list[Message]:
            """The burst's rows once each was sent or held back by a worker (a reason set)."""
            with services.sessions() as session:
                rows = list(session.scalars(select(Message).where(Message.id.in_(ids))))
            sent = {MessageStatus.SENT, MessageStatus.DELIVERED}
            handled = all(
                r.status in sent or (r.status is MessageStatus.SCHEDULED and r.last_error)
                for r in rows
            )
            return rows if handled else []

        wait_until(lambda: bool(settled()), timeout=60, what="every burst row sent or held")
        rows = settled()
        sent = [r for r in rows if r.status in {MessageStatus.SENT, MessageStatus.DELIVERED}]
        held = [r for r in rows if r.status is MessageStatus.SCHEDULED]
        assert len(sent) == CAP, [(r.step_key, r.status.value, r.last_error) for r in rows]
        assert len(held) == DUE_AT_ONCE - CAP
        assert all(f"at most {CAP} per 24 hours" in (r.last_error or "") for r in held)
        assert len(twilio.messages) == 1 + CAP
    finally:
        stack.stop()
        services.close()
