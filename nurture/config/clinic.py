"""The clinic's own facts (config/clinic.yaml): who sends, from where, and how to reach them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import BaseModel, ConfigDict, EmailStr, Field, HttpUrl, field_validator

from nurture.config.policy import Window
from nurture.config.yamlconf import load_model

# The clinic.yaml fields that ship with example values and may be listed as placeholders.
PLACEHOLDER_FIELDS = ("address", "on_call_phone")


def _check_e164(value: str) -> str:
    """Only a number written in E.164 that could be a real phone: a typo here would page
    nobody, and nobody would find out until the night it mattered."""
    if not re.fullmatch(r"\+[1-9]\d{7,14}", value):
        raise ValueError(f"{value!r} is not an E.164 number (write it like +12085550199)")
    if not phonenumbers.is_valid_number(phonenumbers.parse(value)):
        raise ValueError(f"{value!r} is not a valid phone number")
    return value


# When nobody says otherwise, the clinic is staffed on weekdays 08:00-18:00, not on holidays.
DEFAULT_STAFFED = Window(days=["mon", "tue", "wed", "thu", "fri"], start=480, end=1080)


class NewLeadNotices(BaseModel):
    """Who at the clinic hears of each new lead (issue 13 §5), and when someone is there to act.

    A lead who arrives in ``staffed`` hours is announced at once to every address and number
    listed; one who arrives outside them is in the digest sent when staffed hours next begin.
    ``staffed`` also counts the business day within which someone should contact them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: list[EmailStr] = Field(default_factory=list, max_length=20)
    sms: list[str] = Field(default_factory=list, max_length=10)
    # Days, start and end in the clinic's own time zone (``timezone``); with skip_holidays,
    # US federal holidays are not business days.
    staffed: Window = DEFAULT_STAFFED.model_copy(update={"skip_holidays": True})

    @field_validator("sms")
    @classmethod
    def _numbers(cls, value: list[str]) -> list[str]:
        return [_check_e164(number) for number in value]

    @field_validator("staffed")
    @classmethod
    def _some_day(cls, value: Window) -> Window:
        if not value.weekdays():
            raise ValueError("staffed needs at least one day, e.g. days: [mon, tue, wed, thu, fri]")
        return value

    @property
    def recipients(self) -> int:
        return len(self.email) + len(self.sms)


class Clinic(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    # The short name carriers and leads see in texts; no drug or diagnosis words.
    sms_program_name: str = Field(min_length=1, max_length=40)
    phone: str = Field(min_length=7, max_length=30)
    email: EmailStr
    # Where alerts go: crisis words in a text, replies that need a person.
    staff_email: EmailStr
    # The on-call clinician's mobile, paged by text (as well as e-mail) when a crisis reply
    # comes in. E.164, e.g. "+12085550199".
    on_call_phone: str
    # When a person answers at the clinic, in words a lead reads in the crisis reply
    # ("Mon-Fri 8am-6pm Mountain"), so nobody waits overnight for a call back.
    staffed_hours: str = Field(min_length=5, max_length=60)
    address: str = Field(min_length=5, max_length=300)
    booking_url: HttpUrl
    website_url: HttpUrl
    timezone: str = "America/Boise"
    # How often a lead can expect texts; stated in the opt-in confirmation and HELP reply.
    sms_frequency: str = Field(default="up to 4 msgs/week", min_length=3, max_length=60)
    # How long a consultation lasts: the end of the booking confirmation's calendar event.
    consult_minutes: int = Field(default=60, ge=5, le=480)
    # Fields still holding example values. While `address` is one, marketing e-mail is held
    # wherever it would reach people (CAN-SPAM needs a real postal address, rule 17); `nurture
    # run` names each one. Remove a field from the list once it is real.
    placeholders: list[Literal["address", "on_call_phone"]] = Field(default_factory=list)
    # Speed-to-lead (issue 13 §5): who is told of each new lead, and the staffed hours.
    new_lead_notices: NewLeadNotices = Field(default_factory=NewLeadNotices)

    @field_validator("placeholders", mode="before")
    @classmethod
    def _placeholder_names(cls, value: object) -> object:
        if isinstance(value, list):
            unknown = [v for v in value if v not in PLACEHOLDER_FIELDS]
            if unknown:
                raise ValueError(
                    f"placeholders may name {', '.join(PLACEHOLDER_FIELDS)}, not "
                    f"{', '.join(repr(v) for v in unknown)}"
                )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("on_call_phone")
    @classmethod
    def _e164(cls, value: str) -> str:
        return _check_e164(value)

    @field_validator("staffed_hours")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value or "\r" in value:
            raise ValueError("staffed_hours is one line of text, e.g. 'Mon-Fri 8am-6pm Mountain'")
        return value.strip()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def load_clinic(config_dir: Path) -> Clinic:
    return load_model(config_dir / "clinic.yaml", Clinic)


class Disclosures(BaseModel):
    """One version of the consent wording shown beside each checkbox of the sign-up form.

    Each ticked box's own wording is stored with its consent event, and every version is kept
    (nurture.consent.disclosures): new wording needs a new ``version``, and a process refuses
    to start when the file's wording differs from what is on record for its version.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    email_marketing: str = Field(min_length=20)
    sms_marketing: str = Field(min_length=20)
    sms_care: str = Field(min_length=20)


def load_disclosures(config_dir: Path) -> Disclosures:
    return load_model(config_dir / "disclosures.yaml", Disclosures)
