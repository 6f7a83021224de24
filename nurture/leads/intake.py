"""Intake: validate, normalise and de-duplicate a consult sign-up, record its consent, enrol it.

Everything a sign-up writes (lead, consent events, enrolments, planned rows, audit) lands in one
transaction, so a bad or interrupted request leaves nothing half-written.
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from nurture import clock
from nurture.config.clinic import Clinic
from nurture.consent import disclosures, ledger
from nurture.db import audit
from nurture.db.models import Channel, ConsentAction, ConsentEvent, ConsentSource, Lead, Purpose
from nurture.leads import notices
from nurture.outbox import confirmations, planner
from nurture.program import windows
from nurture.program.sequences import Catalog, LifecycleEvent

ZIP_CODE = re.compile(r"^\d{5}(-\d{4})?$")
MAX_SOURCE_BYTES = 4096


class ConsentChoices(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email_marketing: bool = False
    sms_marketing: bool = False
    sms_care: bool = False


# A name is text to show, never a way in: no encoded-words (=?utf-8?q?…?=, which mail software
# decodes into header lines), no links, no markup or template brackets, no invisible characters.
NAME_REFUSED = re.compile(r"=\?|://|www\.|[<>\[\]{}\\|`]", re.IGNORECASE)
# Zero-width joiners are part of how some scripts and emoji are written; every other format,
# control or separator character is invisible or reorders text (bidi overrides) and is refused.
JOINERS = {"\u200c", "\u200d"}


def _clean_text(value: str) -> str:
    for char in value:
        if (
            unicodedata.category(char) in {"Cc", "Cf", "Co", "Cs", "Zl", "Zp"}
            and char not in JOINERS
        ):
            raise ValueError(f"must not contain invisible or control characters ({ord(char):#06x})")
    return " ".join(value.split())


def _clean_name(value: str) -> str:
    value = _clean_text(value)
    if NAME_REFUSED.search(value):
        raise ValueError(
            "please enter just your name, without links, code or the characters < > [ ] { } \\ | `"
        )
    return value


# Numbers that can never be a person's mobile phone: texts to them fail or cost the clinic money.
NOT_A_MOBILE = {
    phonenumbers.PhoneNumberType.TOLL_FREE: "a toll-free number",
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    phonenumbers.PhoneNumberType.SHARED_COST: "a shared-cost number",
    phonenumbers.PhoneNumberType.UAN: "a company number",
    phonenumbers.PhoneNumberType.VOICEMAIL: "a voicemail number",
    phonenumbers.PhoneNumberType.PAGER: "a pager number",
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "a forwarding number",
}


def normalize_phone(raw: str) -> str:
    """E.164 for a valid number that can be a mobile; US numbers may omit the country code."""
    try:
        number = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException:
        raise ValueError(
            "not a phone number; write it like (208) 555-0134 or +12085550134"
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number; check the area code and digits")
    kind = NOT_A_MOBILE.get(phonenumbers.number_type(number))
    if kind is not None:
        raise ValueError(f"this is {kind}, not a mobile phone; give your own cell number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    """The address in plain ASCII, lower-cased; an international domain in its xn-- form.

    An address with non-ASCII characters before the @ would need SMTPUTF8 end to end, which
    most clinics' mail providers do not offer: it is refused here with a clear message rather
    than accepted and left undeliverable."""
    if not raw.partition("@")[0].isascii():
        raise ValueError(
            "the part before the @ has letters we cannot send to (such as ü or é); "
            "give an address with only English letters, digits and . _ - + before the @"
        )
    try:
        result = validate_email(raw, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as error:
        raise ValueError(f"not a valid e-mail address: {error}") from None
    if result.ascii_email is None:  # pragma: no cover - allow_smtputf8=False guarantees it
        raise ValueError("not a valid e-mail address")
    return result.ascii_email.lower()


class Signup(BaseModel):
    """A consult sign-up as the form or the clinic's website sends it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(default="", max_length=100)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    timezone: str | None = Field(
        default=None,
        max_length=64,
        description=(
            "The IANA zone of the browser the person signed up in (e.g. America/Boise), as the"
            " hosted form sends it; forward the browser's. Weak evidence: it can only narrow"
            " the hours texts may go in, never widen them past what the ZIP code and the area"
            " code allow, and a second sign-up never moves it."
        ),
    )
    chosen_timezone: str | None = Field(
        default=None,
        max_length=64,
        description=(
            "An IANA zone the person chose themselves (a list on your intake form, a question"
            " your staff asked): it wins over the ZIP code, the area code and the browser."
            " Leave it out unless the person chose it."
        ),
    )
    postal_code: str | None = Field(default=None, max_length=10)
    consent: ConsentChoices = Field(default_factory=ConsentChoices)
    consent_text: str | None = Field(
        default=None,
        max_length=5000,
        description=(
            "The wording your page showed, if you like: kept only as your claim. The consent "
            "is recorded with the server's own wording of consent_version."
        ),
    )
    consent_version: str | None = Field(
        default=None,
        max_length=64,
        description=(
            "The version of config/disclosures.yaml whose wording was shown beside the boxes;"
            " required with any consent. An unknown version is refused, naming the known ones."
        ),
    )
    source: dict[str, Any] = Field(default_factory=dict)

    @field_validator("first_name", "last_name")
    @classmethod
    def _names(cls, value: str) -> str:
        return _clean_name(value)

    @field_validator(
        "email",
        "phone",
        "timezone",
        "chosen_timezone",
        "postal_code",
        "consent_text",
        "consent_version",
    )
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return normalize_email(value) if value else None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return normalize_phone(value) if value else None

    @field_validator("timezone", "chosen_timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as America/Boise"
            ) from None
        return value

    @field_validator("postal_code")
    @classmethod
    def _postal_code(cls, value: str | None) -> str | None:
        if value is not None and not ZIP_CODE.match(value):
            raise ValueError("not a US ZIP code; write 5 digits, e.g. 83402")
        return value

    @field_validator("source")
    @classmethod
    def _source_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value, default=str)) > MAX_SOURCE_BYTES:
            raise ValueError(f"too large; keep it under {MAX_SOURCE_BYTES} bytes")
        return value


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str


def cross_field_problems(
    signup: Signup, *, sms_countries: list[str] | None = None, given: frozenset[str] = frozenset()
) -> list[FieldProblem]:
    """Rules that span fields, each reported against the field the person should fix.

    ``given``: fields the person filled in that failed their own check (a mistyped phone is
    not a missing one: it is not reported again as "give an e-mail address or a phone")."""
    problems = []
    has_email = bool(signup.email) or "email" in given
    has_phone = bool(signup.phone) or "phone" in given
    if not has_email and not has_phone:
        problems.append(FieldProblem("email", "give an e-mail address or a phone number"))
    texts = signup.consent.sms_marketing or signup.consent.sms_care
    if texts and not has_phone:
        problems.append(FieldProblem("phone", "a phone number is needed to receive texts"))
    if signup.consent.email_marketing and not has_email:
        problems.append(FieldProblem("email", "an e-mail address is needed to receive e-mail"))
    if texts and signup.phone and sms_countries is not None:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(signup.phone))
        if region not in sms_countries:
            problems.append(
                FieldProblem("phone", f"we can only text numbers in {', '.join(sms_countries)}")
            )
    if (texts or signup.consent.email_marketing) and not signup.consent_version:
        problems.append(
            FieldProblem(
                "consent_version",
                "name the disclosure version the person was shown; it is required to record "
                "consent",
            )
        )
    return problems


# A field people never see (hidden from sight and from screen readers): only bots fill it in.
HONEYPOT_FIELD = "website"


def is_bot(data: dict[str, Any]) -> bool:
    """True when the honeypot was filled in; it is removed from ``data`` either way."""
    return bool(str(data.pop(HONEYPOT_FIELD, "") or "").strip())


class InvalidSignupError(ValueError):
    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


def _field_problems(error: ValidationError) -> list[FieldProblem]:
    return [
        FieldProblem(
            ".".join(str(part) for part in item["loc"]) or "body",
            _in_words(item["loc"], item["type"], item.get("ctx") or {})
            or item["msg"].removeprefix("Value error, "),
        )
        for item in error.errors(include_url=False)
    ]


def _in_words(loc: tuple[int | str, ...], kind: str, ctx: dict[str, Any]) -> str | None:
    """What a person reads instead of the validator's own words (our rules speak already)."""
    name = loc[0] if loc else None
    if name == "first_name" and kind in {"missing", "string_too_short"}:
        return "please tell us your first name"
    if kind == "string_too_long":
        return f"too long: at most {ctx.get('max_length', 'a few')} characters"
    if kind == "missing":
        return "this is required"
    if kind in {"string_type", "bool_type", "bool_parsing", "dict_type"}:
        return {"string_type": "must be text", "dict_type": "must be an object"}.get(
            kind, "must be yes or no"
        )
    return None  # our own rules (value_error) and anything rarer keep their message


def parse_signup(data: object, *, sms_countries: list[str] | None = None) -> Signup:
    """Validate raw input; raise InvalidSignupError naming every bad field at once."""
    try:
        signup = Signup.model_validate(data)
    except ValidationError as error:
        problems = _field_problems(error)
        # Check the rules that span fields on what is left, so the person sees every problem
        # in one go ("a phone number is needed" alongside "not a valid e-mail address").
        if isinstance(data, dict):
            flagged = {problem.field.split(".")[0] for problem in problems}
            rest = {key: value for key, value in data.items() if key not in flagged}
            if "first_name" in flagged:  # reported already; stand in so the rest can be checked
                rest["first_name"] = "-"
            given = frozenset(name for name in flagged if str(data.get(name) or "").strip())
            try:
                partial = Signup.model_validate(rest)
            except ValidationError:
                pass
            else:
                problems += [
                    p
                    for p in cross_field_problems(partial, sms_countries=sms_countries, given=given)
                    if p.field.split(".")[0] not in flagged
                ]
        raise InvalidSignupError(problems) from None
    problems = cross_field_problems(signup, sms_countries=sms_countries)
    if problems:
        raise InvalidSignupError(problems)
    return signup


@dataclass(frozen=True)
class RequestEvidence:
    """Where and how consent was given: kept with every consent event."""

    ip: str | None
    user_agent: str | None
    page_url: str | None
    source: ConsentSource


@dataclass(frozen=True)
class SignupResult:
    lead_id: uuid.UUID
    created: bool


def find_lead(session: Session, reference: str) -> Lead | None:
    """A lead by id, e-mail address or phone number (any common way of writing them)."""
    try:
        return session.get(Lead, uuid.UUID(reference))
    except ValueError:
        pass
    for normalize, column in ((normalize_email, Lead.email), (normalize_phone, Lead.phone)):
        try:
            value = normalize(reference)
        except ValueError:
            continue
        found = session.scalars(select(Lead).where(column == value)).one_or_none()
        if found is not None:
            return found
    return None


def find_existing(session: Session, email: str | None, phone: str | None) -> list[Lead]:
    conditions = []
    if email:
        conditions.append(Lead.email == email)
    if phone:
        conditions.append(Lead.phone == phone)
    return list(session.scalars(select(Lead).where(or_(*conditions))))


def _grants(signup: Signup) -> list[tuple[Channel, Purpose, str | None]]:
    """(channel, purpose, the checkbox that granted it) for each consent this sign-up gives."""
    grants: list[tuple[Channel, Purpose, str | None]] = []
    if signup.email:
        # Mail about the consultation they asked for is care, not marketing (CAN-SPAM's
        # transactional class); it is still recorded so the ledger is the only truth.
        grants.append((Channel.EMAIL, Purpose.CARE, None))
    if signup.consent.email_marketing:
        grants.append((Channel.EMAIL, Purpose.MARKETING, "email_marketing"))
    if signup.consent.sms_care:
        grants.append((Channel.SMS, Purpose.CARE, "sms_care"))
    if signup.consent.sms_marketing:
        grants.append((Channel.SMS, Purpose.MARKETING, "sms_marketing"))
    return grants


def _zone_seen(signup: Signup, lead: Lead) -> dict[str, str]:
    """A browser zone this sign-up reported that differs from the one kept."""
    if signup.timezone and signup.timezone != lead.browser_timezone:
        return {"browser_timezone_seen": signup.timezone}
    return {}


UTM_TAGS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
UTM_LENGTH = 200  # the columns' length


def utm_tags(source: dict[str, Any]) -> dict[str, str | None]:
    """The sign-up's UTM tags, as the funnel groups by them: text, trimmed, cut to the column's
    length; anything else (a number, a list from a hand-made post) is no tag."""
    tags: dict[str, str | None] = {}
    for name in UTM_TAGS:
        value = source.get(name)
        tags[name] = (value.strip()[:UTM_LENGTH] or None) if isinstance(value, str) else None
    return tags


def _keep_first_touch(lead: Lead, signup: Signup) -> None:
    """A lead with no UTM tags yet takes this sign-up's; tags once set are the first touch and
    stay (a second sign-up from an ad does not take the credit from the first)."""
    if all(getattr(lead, name) is None for name in UTM_TAGS):
        for name, value in utm_tags(signup.source).items():
            setattr(lead, name, value)


def _new_lead_values(signup: Signup, now: datetime) -> dict[str, Any]:
    return {
        **utm_tags(signup.source),
        "id": uuid.uuid4(),
        "first_name": signup.first_name,
        "last_name": signup.last_name,
        "email": signup.email,
        "phone": signup.phone,
        "timezone": signup.chosen_timezone,
        "browser_timezone": signup.timezone,
        "postal_code": signup.postal_code,
        "state": windows.state_for_postal_code(signup.postal_code),
        "created_at": now,
        "updated_at": now,
    }


# INSERT ... ON CONFLICT DO NOTHING RETURNING, built once per dialect: building it per call
# cost more than running it.
_INSERT_UNLESS_TAKEN = {
    "postgresql": postgresql.insert(Lead).on_conflict_do_nothing().returning(Lead),
    "sqlite": sqlite.insert(Lead).on_conflict_do_nothing().returning(Lead),
}


def _insert_unless_taken(session: Session, values: dict[str, Any]) -> Lead | None:
    """The new lead, or None when its e-mail or phone is already someone's.

    A new person costs one statement, not a look-up and then an insert. A sign-up racing
    another for the same address waits for it here and then finds its lead, instead of failing
    on the unique index and starting over."""
    statement = _INSERT_UNLESS_TAKEN[session.get_bind().dialect.name]
    return session.scalars(statement, [values]).one_or_none()


def _grant_evidence(
    signup: Signup,
    evidence: RequestEvidence,
    shown: disclosures.Shown | None,
    checkbox: str | None,
    owner: Lead,
    *,
    channel: Channel,
    now: datetime,
) -> dict[str, Any]:
    """Rule 1's record of one grant: who (name, and the number an SMS grant covers), the
    server's own wording of the box that granted it and its version, the seller, how the box
    started, where and from what (page, IP, user agent). The wording a caller sent is only its
    claim; without ``shown`` there is no wording on record."""
    record: dict[str, Any] = {
        "name": f"{signup.first_name} {signup.last_name}".strip(),
        "contact": owner.phone if channel is Channel.SMS else owner.email,
        "checkbox": checkbox,
        "disclosure_version": shown.wording.version if shown else signup.consent_version,
        "disclosure_text": None,
        "seller": shown.seller if shown else None,
        "box_started_unticked": shown.boxes_started_unticked if shown else None,
        "page_url": evidence.page_url,
        "ip": evidence.ip,
        "user_agent": evidence.user_agent,
    }
    if channel is Channel.SMS:
        record["phone"] = owner.phone
    if shown is not None and checkbox is not None:
        record.update(disclosures.box_evidence(shown, checkbox, now=now))
    if signup.consent_text is not None:
        record["caller_claim"] = signup.consent_text
    return record


def _apply(
    session: Session,
    signup: Signup,
    evidence: RequestEvidence,
    *,
    catalog: Catalog,
    clinic_zone: ZoneInfo,
    now: datetime,
    shown: disclosures.Shown | None,
    staff: StaffContact | None,
) -> SignupResult:
    lead = _insert_unless_taken(session, _new_lead_values(signup, now))
    created = lead is not None
    by_email = by_phone = None
    retimed = 0
    if lead is None:
        # The e-mail or the phone is someone's already: most often this person, again.
        existing = find_existing(session, signup.email, signup.phone)
        by_email = next(
            (lead for lead in existing if signup.email and lead.email == signup.email), None
        )
        by_phone = next(
            (lead for lead in existing if signup.phone and lead.phone == signup.phone), None
        )
        lead = by_email or by_phone
    if lead is None:
        # The row it clashed with is gone again; a plain insert, retried if it clashes too.
        lead = Lead(**_new_lead_values(signup, now))
        session.add(lead)
        session.flush()
        created = True
    elif not created:
        zone_before = windows.zones_of(lead, clinic_zone).shown
        # Fill what we did not know; never move an address that belongs to someone else.
        if signup.email and lead.email is None and by_phone is lead and by_email is None:
            lead.email = signup.email
        if signup.phone and lead.phone is None and by_phone is None:
            lead.phone = signup.phone
        # A second browser (a trip, a work laptop) must not move their zone: it is kept in the
        # sign-up's audit entry instead.
        lead.browser_timezone = lead.browser_timezone or signup.timezone
        # A zone the person chose is on purpose: it replaces what they chose before.
        lead.timezone = signup.chosen_timezone or lead.timezone
        lead.postal_code = signup.postal_code or lead.postal_code
        lead.state = windows.state_for_postal_code(lead.postal_code) or lead.state
        lead.last_name = lead.last_name or signup.last_name
        _keep_first_touch(lead, signup)
        # A zone they chose now, or a ZIP code that places them elsewhere: what they were
        # sent at a local hour follows them there (as when staff correct the zone).
        retimed = planner.retime_local_steps(
            session, lead, zone_before, catalog=catalog, clinic_zone=clinic_zone, now=now
        )
    # Consent follows the identifier it was given for: SMS consent belongs to the lead who owns
    # the number, even when the e-mail matched a different record.
    sms_owner = by_phone or lead
    # Every audit entry of the sign-up is written at the end, in one statement, in this order.
    trail = audit.Trail()
    grants = _grants(signup)
    # Texts asked for again by a number that opted out (rules 3 and 11): confirmed by a new
    # opt-in text, or, after a crisis or a STOP by text in the last 30 days, by a person first.
    texts_asked = [box for channel, _, box in grants if channel is Channel.SMS]
    # A person new this moment has withdrawn nothing: no query for them (intake's cost).
    texts_were_off = bool(texts_asked) and not created and _texts_withdrawn(session, sms_owner)
    held = (
        confirmations.why_a_person_confirms_first(session, sms_owner, now=now)
        if texts_were_off
        else None
    )
    if held is not None:
        grants = [g for g in grants if g[0] is not Channel.SMS]
        _hold_texts(session, sms_owner, texts_asked, held, staff, now=now)
    changes = []
    for channel, purpose, checkbox in grants:
        owner = sms_owner if channel is Channel.SMS else lead
        changes.append(
            ledger.Change(
                lead_id=owner.id,
                channel=channel,
                purpose=purpose,
                action=ConsentAction.GRANTED,
                source=evidence.source,
                evidence=_grant_evidence(
                    signup, evidence, shown, checkbox, owner, channel=channel, now=now
                ),
            )
        )
    ledger.record_all(session, changes, actor="lead", trail=trail)
    if by_email is not None and by_phone is not None and by_email is not by_phone:
        trail.add(
            actor="lead",
            action="lead.identity_conflict",
            lead_id=lead.id,
            details={"phone_lead_id": str(by_phone.id)},
        )
    trail.add(
        actor="lead",
        action="lead.signed_up" if created else "lead.signed_up_again",
        lead_id=lead.id,
        details={
            "source": signup.source,
            "page_url": evidence.page_url,
            **_zone_seen(signup, lead),
            **({"messages_retimed": retimed} if retimed else {}),
        },
    )
    planner.handle_event(
        session,
        lead,
        LifecycleEvent.SIGNED_UP,
        catalog=catalog,
        clinic_zone=clinic_zone,
        now=now,
        actor="lead",
        trail=trail,
        new_lead=created,
    )
    if texts_were_off and held is None:
        confirmations.plan_optin_confirmation(session, sms_owner, now=now, actor="lead")
    if created and staff is not None:  # speed-to-lead: a repeat sign-up tells no one again
        notices.announce_new_lead(
            session,
            lead,
            came_by=notices.came_by(evidence.source),
            clinic=staff.clinic,
            public_url=staff.public_url,
            now=now,
            actor="lead",
            trail=trail,
            just_created=True,
        )
    trail.write(session)
    return SignupResult(lead_id=lead.id, created=created)


@dataclass(frozen=True)
class StaffContact:
    """Where a sign-up that needs a person is sent: the clinic's staff, and links to the lead."""

    clinic: Clinic
    public_url: str


def _texts_withdrawn(session: Session, lead: Lead) -> bool:
    """Whether the number's texts were switched off by a withdrawal (not simply never given)."""
    revoked = session.scalar(
        select(ConsentEvent.id)
        .where(
            ConsentEvent.lead_id == lead.id,
            ConsentEvent.channel == Channel.SMS,
            ConsentEvent.action == ConsentAction.REVOKED,
        )
        .limit(1)
    )
    state = ledger.current(session, lead.id)
    return revoked is not None and not any(
        state.allows(Channel.SMS, purpose) for purpose in ledger.LEDGER_PURPOSES
    )


def _hold_texts(
    session: Session,
    lead: Lead,
    asked_for: list[str | None],
    reason: str,
    staff: StaffContact | None,
    *,
    now: datetime,
) -> None:
    if staff is None:  # no one to tell (a test's direct call): the hold is still audited
        audit.record(
            session,
            actor="lead",
            action="consent.regrant_held",
            lead_id=lead.id,
            details={"asked_for": [b for b in asked_for if b], "reason": reason},
        )
        return
    confirmations.ask_a_person_first(
        session,
        lead,
        asked_for=[f"texts ({b}) on the sign-up form" for b in asked_for if b],
        reason=reason,
        clinic=staff.clinic,
        public_url=staff.public_url,
        now=now,
        actor="lead",
    )


def submit_signup(
    factory: sessionmaker[Session],
    signup: Signup,
    evidence: RequestEvidence,
    *,
    catalog: Catalog,
    clinic_zone: ZoneInfo,
    shown: disclosures.Shown | None = None,
    staff: StaffContact | None = None,
) -> SignupResult:
    """Store a sign-up in one transaction. Two identical sign-ups racing each other end as one
    lead and one enrolment: the loser hits a unique constraint and retries as the existing lead.

    ``shown`` is what the server knows was in front of the person (the web handlers resolve it
    from ``consent_version``); each grant stores its box's wording from it.
    """
    problems = cross_field_problems(signup)
    if problems:
        raise InvalidSignupError(problems)
    attempts = 3
    for attempt in range(attempts):
        try:
            with factory.begin() as session:
                return _apply(
                    session,
                    signup,
                    evidence,
                    catalog=catalog,
                    clinic_zone=clinic_zone,
                    now=clock.utcnow(),
                    shown=shown,
                    staff=staff,
                )
        except IntegrityError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")
