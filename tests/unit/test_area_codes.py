"""nurture/program/area_codes.py is generated from phonenumbers' geocoding data; these tests
read that data (the service never does) and fail when an upgraded phonenumbers disagrees with
the table."""

from __future__ import annotations

import phonenumbers
from phonenumbers import geocoder
from phonenumbers.geodata import GEOCODE_DATA
from phonenumbers.tzdata import TIMEZONE_DATA

from nurture.program import windows
from nurture.program.area_codes import AREA_CODE_STATES, AREA_CODE_ZONES, PHONENUMBERS_VERSION
from scripts.build_area_codes import build, build_zones, state_of

REGENERATE = (
    "nurture/program/area_codes.py no longer matches phonenumbers {installed} (it was built from "
    "{built}): run `.venv/bin/python -m scripts.build_area_codes` and commit the result"
)
# Digits after a prefix to make a whole number: 555 is a valid exchange under every area code.
FILLER = "5550123"


def test_the_committed_table_is_what_the_installed_phonenumbers_data_says() -> None:
    message = REGENERATE.format(installed=phonenumbers.__version__, built=PHONENUMBERS_VERSION)
    assert build() == AREA_CODE_STATES, message
    assert build_zones() == AREA_CODE_ZONES, message


def test_every_zone_an_exchange_is_in_is_among_its_area_codes_zones() -> None:
    for prefix, names in TIMEZONE_DATA.items():
        if prefix.startswith("1") and len(prefix) >= 4:
            assert set(names) - {"Etc/Unknown"} <= set(AREA_CODE_ZONES[prefix[1:4]]), prefix


def test_every_state_the_geocoder_names_for_a_number_is_among_its_area_codes_states() -> None:
    """The geocoder's own answer for real numbers under each prefix (every area code, and a
    tenth of the finer prefixes) is one of the states the table gives for the area code."""
    checked = set()
    for n, prefix in enumerate(p for p in GEOCODE_DATA if p.startswith("1")):
        if len(prefix) > 4 and n % 10:
            continue
        phone = "+" + prefix + FILLER[len(prefix) - 4 :]
        number = phonenumbers.parse(phone)
        if phonenumbers.region_code_for_number(number) != "US":
            continue
        state = state_of(geocoder.description_for_number(number, "en"))
        if state is None:
            continue
        assert state in windows.states_for_phone(phone), (phone, state)
        checked.add(prefix[1:4])
    assert len(checked) == len(AREA_CODE_STATES) > 300  # every area code was looked at


def test_descriptions_become_state_codes() -> None:
    assert state_of("Boise, ID") == "ID"
    assert state_of("Idaho") == "ID"
    assert state_of("Washington State") == "WA"
    assert state_of("Washington D.C.") == "DC"
    assert state_of("Winnipeg, MB") is None
    assert state_of("Ontario") is None
    assert state_of("") is None
