"""Each template's HIPAA category (compliance rule 20), declared in the template itself.

A template says what kind of communication it is on a Jinja comment of its own, so it renders
to nothing and travels with every version of the template::

    {# hipaa_category: treatment -#}

- ``treatment``: about the person's own care: reminders, confirmations, instructions.
- ``operations``: running the service: opt-in and opt-out replies, help, staff alerts.
- ``own_services``: describes the clinic's own services; not HIPAA "marketing" unless a third
  party pays the clinic for it (45 CFR 164.501).
- ``third_party_marketing``: needs the person's written authorization (164.508(a)(3)), which
  nurture does not record, so such a template can never be published.

Lint checks the category against how the program uses the template (its purposes).
"""

from __future__ import annotations

import re

from nurture.db.models import Purpose

CATEGORIES = ("treatment", "operations", "own_services", "third_party_marketing")
_DECLARATION = re.compile(r"\{#-?\s*hipaa_category:\s*([\w-]+)\s*-?#\}")

# What each use of a template may be. A marketing step describes the clinic's own services;
# anything else is care or the running of the service.
ALLOWED: dict[Purpose, frozenset[str]] = {
    Purpose.MARKETING: frozenset({"own_services"}),
    Purpose.CARE: frozenset({"treatment", "operations"}),
    Purpose.OPTIN: frozenset({"operations"}),
    Purpose.ALERT: frozenset({"operations"}),
}


def declared_category(source: str) -> str | None:
    found = _DECLARATION.search(source)
    return found.group(1) if found else None


def category_problems(source: str, purposes: set[Purpose]) -> list[str]:
    category = declared_category(source)
    if category is None:
        return [
            "declare the template's HIPAA category on a line of its own: "
            "{# hipaa_category: treatment -#} (or operations, own_services)"
        ]
    if category not in CATEGORIES:
        return [f"hipaa_category {category!r} is not one of {', '.join(CATEGORIES)}"]
    if category == "third_party_marketing":
        return [
            "third-party marketing needs each person's written authorization (45 CFR "
            "164.508(a)(3)), which nurture does not record: it cannot be sent"
        ]
    return [
        f"hipaa_category {category} does not fit its use as a {purpose.value} message "
        f"(allowed: {', '.join(sorted(ALLOWED[purpose]))})"
        for purpose in sorted(purposes, key=lambda p: p.value)
        if category not in ALLOWED[purpose]
    ]
