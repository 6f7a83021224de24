"""The password rules for staff accounts: long is not enough, it must be hard to guess."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nurture import staff

CLINIC = "Ketamine Infusions of Idaho"
EMAIL = "ann.lee@clinic.example"


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "use at least 12 characters"),
        ("x" * 129, "use at most 128 characters"),
        ("aaaaaaaaaaaa", 'Repeats like "aaa" are easy to guess.'),
        (" " * 12, 'Repeats like "aaa" are easy to guess.'),
        ("abcdefghijkl", 'Sequences like "abc" or "6543" are easy to guess.'),
        ("qwertyuiop[]", "Straight rows of keys are easy to guess."),
        ("Password1234", "This is similar to a commonly used password."),
        (EMAIL, "built from the e-mail address or the clinic's name"),
        ("ann.lee2026!", "built from the e-mail address or the clinic's name"),
        (CLINIC, "built from the e-mail address or the clinic's name"),
        ("idahoketamine", "built from the e-mail address or the clinic's name"),
    ],
)
def test_a_guessable_password_is_refused_with_the_reason(password: str, reason: str) -> None:
    problem = staff.password_problem(password, email=EMAIL, clinic_name=CLINIC)
    assert problem is not None and reason in problem, problem


@pytest.mark.parametrize(
    "password",
    ["correct horse battery staple", "a long and careful passphrase", "tulip-orbit-47-canyon"],
)
def test_a_hard_to_guess_password_is_accepted(password: str) -> None:
    assert staff.password_problem(password, email=EMAIL, clinic_name=CLINIC) is None


def test_the_address_and_the_clinic_count_against_a_password_only_for_that_account() -> None:
    assert staff.password_problem("idahoketamine", email=EMAIL, clinic_name=CLINIC)
    assert staff.password_problem("idahoketamine", email="bob@example.org") is None
    assert staff.password_problem("ann.lee2026!", email=EMAIL)
    assert staff.password_problem("ann.lee2026!", email="bob@example.org") is None


def test_add_user_refuses_a_weak_password_before_touching_the_database() -> None:
    with pytest.raises(staff.StaffError, match="password: too easy to guess"):
        staff.add_user(
            None,  # type: ignore[arg-type]
            EMAIL,
            "aaaaaaaaaaaa",
            role="ops",
            phone=None,
            actor="test",
        )


def test_zxcvbn_is_loaded_only_when_a_password_is_checked() -> None:
    """Its dictionaries are 13 MB that every web process and worker would hold from start."""
    script = (
        "import sys, nurture.web.app, workers\n"
        "from nurture.staff import accounts\n"
        "assert 'zxcvbn' not in sys.modules\n"
        "accounts.password_problem('plum orchard lantern 48', email='a@clinic.example')\n"
        "assert 'zxcvbn' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
