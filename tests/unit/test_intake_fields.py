"""What a lead may type into the sign-up form: names that stay names, addresses we can deliver
to, and phone numbers that can be a mobile. Each refusal names the field and says why."""

from __future__ import annotations

import pytest

from nurture.leads.intake import InvalidSignupError, parse_signup


def problems_for(**fields: object) -> dict[str, str]:
    data: dict[str, object] = {"first_name": "Ann", "email": "ann@example.com", **fields}
    with pytest.raises(InvalidSignupError) as caught:
        parse_signup(data)
    return {problem.field: problem.message for problem in caught.value.problems}


@pytest.mark.parametrize(
    "name",
    [
        "=?utf-8?q?Ann=0D=0ABcc:_someone@example.org?=",
        "=?UTF-8?B?QW5uDQpSZXBseS1UbzogZXZpbEBleGFtcGxlLm9yZw==?=",
        "[Verify your account](https://evil.example/login)",
        "![x](https://evil.example/pixel.png)",
        "<img src=x onerror=alert(1)>",
        "{{ 7*7 }}",
        "Visit www.evil.example",
        "Ann\u202eevil",  # a right-to-left override reorders what staff see
        "Ann\u2028Bcc: x@example.org",
        "Ann\x7f",
    ],
)
def test_a_name_that_carries_code_links_or_hidden_characters_is_refused(name: str) -> None:
    problems = problems_for(first_name=name)
    assert set(problems) == {"first_name"}


@pytest.mark.parametrize(
    "name", ["Zoë Ñúñez", "O'Brien", "Anne-Marie", "Dr. J. R. Smith", "李小龙", "नमस्ते\u200d"]
)
def test_real_names_in_any_script_are_accepted(name: str) -> None:
    assert parse_signup({"first_name": name, "email": "ann@example.com"}).first_name == name


def test_a_non_ascii_mailbox_is_refused_with_a_reason() -> None:
    problems = problems_for(email="üser@example.com")
    assert "before the @" in problems["email"]


def test_an_international_domain_is_stored_in_its_ascii_form() -> None:
    signup = parse_signup({"first_name": "Ann", "email": "Ann@Bücher.example"})
    assert signup.email == "ann@xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("number", "kind"),
    [
        ("+1 900 555 0100", "premium-rate"),
        ("(800) 555-0100", "toll-free"),
        ("+18885550100", "toll-free"),
    ],
)
def test_numbers_that_cannot_be_a_mobile_are_refused(number: str, kind: str) -> None:
    problems = problems_for(phone=number)
    assert kind in problems["phone"]


def test_an_ordinary_idaho_number_is_accepted() -> None:
    assert parse_signup({"first_name": "Ann", "phone": "(208) 522-0134"}).phone == "+12085220134"
