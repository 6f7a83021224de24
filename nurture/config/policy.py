"""The sending policy (config/policy.yaml): windows, caps, state rules, keywords, limits."""

from __future__ import annotations

import re
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from nurture.config.durations import parse_duration
from nurture.config.yamlconf import load_model

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _minutes(value: object) -> int:
    """'09:00' → 540; '24:00' → 1440 (the end of the day)."""
    if isinstance(value, int) and not isinstance(value, bool):  # YAML 1.1 sexagesimal 09:00
        value = f"{value // 60:02d}:{value % 60:02d}"
    if isinstance(value, time):
        return value.hour * 60 + value.minute
    if not isinstance(value, str) or not re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
        raise ValueError(f'bad time {value!r}: write it as "HH:MM", e.g. "09:00"')
    hours, minutes = (int(part) for part in value.split(":"))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"bad time {value!r}: use 00:00 to 24:00")
    return hours * 60 + minutes


Minutes = Annotated[int, BeforeValidator(_minutes)]


def _duration(value: object) -> timedelta:
    if not isinstance(value, str):
        raise ValueError(f"bad duration {value!r}: write it like 24h")
    return parse_duration(value)


class Window(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | Literal["all"] = "all"
    start: Minutes = 0
    end: Minutes = 1440
    skip_holidays: bool = False

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, end: int, info: ValidationInfo) -> int:
        if end <= info.data.get("start", 0):
            raise ValueError("end must be after start")
        return end

    def weekdays(self) -> frozenset[int]:
        if self.days == "all":
            return frozenset(range(7))
        return frozenset(DAY_NAMES.index(day) for day in self.days)


class ChannelWindows(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    marketing: Window
    care: Window
    optin: Window | None = None
    alert: Window | None = None


class Windows(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sms: ChannelWindows
    email: ChannelWindows


class DayHours(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start: Minutes
    end: Minutes


class StateRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start: Minutes | None = None
    end: Minutes | None = None
    sunday: DayHours | None = None
    no_sunday: bool = False
    skip_holidays: bool = False
    cap_per_24h: int | None = Field(default=None, ge=0)


class Caps(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sms_marketing_per_24h: int = Field(ge=0)
    # What the disclosure promises ("up to 4 msgs/week"): a rolling seven days, not a calendar
    # week. Lint refuses a clinic whose promise and this number disagree.
    sms_marketing_per_7d: int | None = Field(default=None, ge=0)


class SmsPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    countries: list[str] = Field(min_length=1)
    optin_confirmation_every: Annotated[timedelta, BeforeValidator(_duration)]


def _patterns(values: list[str]) -> list[str]:
    for value in values:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f"bad pattern {value!r}: {error}") from None
    return values


class Keywords(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    opt_out: list[str] = Field(min_length=1)
    opt_in: list[str] = Field(min_length=1)
    help: list[str] = Field(min_length=1)
    opt_out_phrases: list[str] = Field(default_factory=list)
    crisis: list[str] = Field(min_length=1)

    @field_validator("opt_out_phrases", "crisis")
    @classmethod
    def _compiles(cls, values: list[str]) -> list[str]:
        return _patterns(values)


def _rate(value: object) -> str:
    from limits import parse

    if not isinstance(value, str):
        raise ValueError(f"bad rate {value!r}: write it like '10 per hour'")
    try:
        parse(value)
    except ValueError:
        raise ValueError(f"bad rate {value!r}: write it like '10 per hour'") from None
    return value


class SignupLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    per_ip: Annotated[str, BeforeValidator(_rate)]
    per_phone: Annotated[str, BeforeValidator(_rate)]


class ContentRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sms_forbidden: list[str] = Field(default_factory=list)
    care_email_forbidden: list[str] = Field(default_factory=list)
    email_health_details: list[str] = Field(default_factory=list)
    required: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("sms_forbidden", "care_email_forbidden", "email_health_details")
    @classmethod
    def _compiles(cls, values: list[str]) -> list[str]:
        return _patterns(values)


class ReassignedNumbers(BaseModel):
    """Compliance rule 12: before texting on an old consent, ask the FCC Reassigned Numbers
    Database (through Twilio Lookup) whether the number changed hands since it was given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A text on an SMS consent older than this asks first (the FCC's example is 90 days).
    check_after: Annotated[timedelta, BeforeValidator(_duration)] = timedelta(days=90)
    # How long an answer stands for the same number and consent date. A "no" holds for at
    # least about 10 days: a carrier ages a disconnected number 45 days before giving it to
    # someone else, and the database learns of a disconnect up to ~35 days late.
    cache_for: Annotated[timedelta, BeforeValidator(_duration)] = timedelta(days=7)
    # A lookup that failed (timeout, 5xx): the text waits this long and asks again.
    retry_after: Annotated[timedelta, BeforeValidator(_duration)] = timedelta(minutes=15)

    @field_validator("check_after", "cache_for", "retry_after")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta():
            raise ValueError("must be more than 0, e.g. 90d, 7d or 15m")
        return value


class EmailFeedback(BaseModel):
    """Issue 13 §3: bounces and complaints the e-mail provider reports. Gmail and Yahoo want
    spam complaints under 0.1 % of mail sent and never at 0.3 %; past a rate here, marketing
    e-mail is paused (care e-mail still goes) until ops resume it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Complaints per e-mail sent over ``window`` at which marketing e-mail pauses (0.003 = 0.3 %).
    pause_at_complaint_rate: float = Field(default=0.003, gt=0, le=1)
    # Permanent bounces per e-mail sent over ``window`` at which it pauses (a list gone stale).
    pause_at_bounce_rate: float = Field(default=0.05, gt=0, le=1)
    window: Annotated[timedelta, BeforeValidator(_duration)] = timedelta(days=7)
    # Below this many e-mails sent in the window, one complaint is not yet a rate.
    min_sent: int = Field(default=200, ge=1)

    @field_validator("window")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta():
            raise ValueError("must be more than 0, e.g. 7d")
        return value


class Attribution(BaseModel):
    """Issue 15 §2: how long after a message a booked consult still counts as that message's
    doing (last touch: the latest message the lead received before booking gets the credit).
    An e-mail is read over days; a text within hours."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: Annotated[timedelta, BeforeValidator(_duration)] = timedelta(days=5)
    sms: Annotated[timedelta, BeforeValidator(_duration)] = timedelta(days=1)

    @field_validator("email", "sms")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta():
            raise ValueError("must be more than 0, e.g. 5d or 24h")
        return value


class Experiments(BaseModel):
    """Issue 15 §3: when an A/B test's winner is called. A variant wins when its probability
    of having the best booking rate reaches ``threshold`` and every variant has reached at
    least ``min_per_arm`` leads; promoting it stays a staff action unless ``auto_promote``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: float = Field(default=0.95, gt=0.5, lt=1)
    min_per_arm: int = Field(default=200, ge=1)
    auto_promote: bool = False


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    windows: Windows
    caps: Caps
    states: dict[str, StateRule] = Field(default_factory=dict)
    sms: SmsPolicy
    keywords: Keywords
    signups: SignupLimits
    content: ContentRules = Field(default_factory=ContentRules)
    reassigned_numbers: ReassignedNumbers = Field(default_factory=ReassignedNumbers)
    email_feedback: EmailFeedback = Field(default_factory=EmailFeedback)
    attribution: Attribution = Field(default_factory=Attribution)
    experiments: Experiments = Field(default_factory=Experiments)

    @field_validator("states")
    @classmethod
    def _state_codes(cls, states: dict[str, StateRule]) -> dict[str, StateRule]:
        for code in states:
            if not re.fullmatch(r"[A-Z]{2}", code):
                raise ValueError(f"{code!r} is not a two-letter state code")
        return states


def load_policy(config_dir: Path) -> Policy:
    return load_model(config_dir / "policy.yaml", Policy)
