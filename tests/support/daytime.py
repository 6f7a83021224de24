"""Live processes cannot have their clock frozen, so live tests pick a lead time zone where it is
daytime right now: the real send windows still apply, and the test passes at any hour."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"

CANDIDATES = [f"Etc/GMT{offset:+d}" if offset else "Etc/GMT" for offset in range(-12, 13)]


def zone_where_it_is_daytime(now: datetime | None = None) -> str:
    """An IANA zone whose local time is between 11:00 and 17:59 now."""
    now = now or datetime.now(UTC)
    for name in CANDIDATES:
        if 11 <= now.astimezone(ZoneInfo(name)).hour <= 17:
            return name
    raise AssertionError("no zone has daytime now; impossible with offsets -12..+12")


def config_texting_at_any_hour(target: Path) -> Path:
    """A copy of the shipped config whose opt-in confirmation may go at any hour.

    For live tests of the mechanics through the hosted form: a form sends only the browser's
    zone, which can no longer widen the window past the area code's (rule 5), so at night in
    every US zone the opt-in text would rightly wait for 08:00."""
    shutil.copytree(REPO_CONFIG, target)
    policy_file = target / "policy.yaml"
    policy = yaml.safe_load(policy_file.read_text())
    policy["windows"]["sms"]["optin"] = {"days": "all", "start": "00:00", "end": "24:00"}
    policy_file.write_text(yaml.safe_dump(policy, allow_unicode=True))
    return target
