"""Issue 14: `nurture run --port P` serves its links under P, and says so once it answers."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from nurture.cli.processes import port_mismatch, public_url_for_run
from nurture.config.settings import Settings
from nurture.supervisor import Announcement, Plan
from nurture.web.public import clock_time


def test_the_embedded_public_url_follows_the_port_unless_one_was_given(tmp_path: Path) -> None:
    assert public_url_for_run(Settings(var_dir=tmp_path), "127.0.0.1", 8123) == (
        "http://127.0.0.1:8123",
        True,
    )
    assert public_url_for_run(Settings(var_dir=tmp_path), "0.0.0.0", 8123)[0] == (  # noqa: S104
        "http://127.0.0.1:8123"
    )
    given = Settings(
        var_dir=tmp_path, public_url="https://consult.example.org", secret_key="k" * 32
    )
    assert public_url_for_run(given, "127.0.0.1", 8123) == ("https://consult.example.org", False)


@pytest.mark.parametrize(
    ("public_url", "port", "warned"),
    [
        ("http://127.0.0.1:8000", 8101, True),  # links would point at a dead port
        ("http://localhost", 8101, True),  # port 80
        ("http://127.0.0.1:8101", 8101, False),
        ("https://consult.example.org", 8101, False),  # a proxy in front: ports differ by design
        ("http://127.0.0.1:notaport", 8101, False),
    ],
)
def test_a_public_url_on_this_machine_but_another_port_is_warned_about(
    public_url: str, port: int, warned: bool
) -> None:
    warning = port_mismatch(public_url, port)
    assert (warning is not None) == warned
    if warning:
        assert f"listens on port {port}" in warning
        assert f"http://127.0.0.1:{port}" in warning


def test_the_form_address_is_printed_only_once_the_port_answers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ready = Announcement(["nurture: sign-up form at x"], ("127.0.0.1", port))
    ready.try_now()
    assert capsys.readouterr().out == ""  # nothing listens yet
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        accepted = threading.Thread(target=lambda: server.accept()[0].close(), daemon=True)
        accepted.start()
        ready.try_now()
        accepted.join(timeout=5)
    assert capsys.readouterr().out == "nurture: sign-up form at x\n"
    ready.try_now()
    assert capsys.readouterr().out == ""  # once


def test_a_plan_keeps_what_to_announce_and_where(tmp_path: Path) -> None:
    plan = Plan(children={"web": ["x"]}, announce=["a", "b"], listening_on=("127.0.0.1", 8123))
    plan.write(tmp_path / "plan.json")
    assert Plan.read(tmp_path / "plan.json") == plan


@pytest.mark.parametrize(
    ("minutes", "said"),
    [(480, "8 a.m."), (0, "12 a.m."), (720, "12 p.m."), (1290, "9:30 p.m."), (545, "9:05 a.m.")],
)
def test_the_thanks_page_says_the_first_text_hour_as_people_do(minutes: int, said: str) -> None:
    assert clock_time(minutes) == said
