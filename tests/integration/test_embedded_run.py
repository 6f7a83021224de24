"""`nurture run` on the embedded default: SQLite, the SQLAlchemy broker, files in the outbox.

This is what a newcomer gets from `make run`: one command, no servers, and a sign-up on the
hosted form turns into files under var/outbox/ within seconds. Ctrl-C stops everything.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx2 as httpx

from tests.support import outbox_files
from tests.support.daytime import config_texting_at_any_hour, zone_where_it_is_daytime
from tests.support.processes import wait_until
from tests.support.stack import start_embedded_run


def test_nurture_run_delivers_a_form_signup_to_the_outbox(tmp_path: Path, log_dir: Path) -> None:
    var = tmp_path / "var"
    config = config_texting_at_any_hour(tmp_path / "config")
    run, url = start_embedded_run(var, log_dir, dispatch_interval=1, config_dir=config)
    try:
        celery = [p for p in _group(run.popen.pid) if b"celery" in (p / "cmdline").read_bytes()]
        assert len(celery) == 3, "the worker and its two prefork children; beat is a thread"
        assert (var / "nurture.sqlite3").is_file()
        assert (var / "broker.sqlite3").is_file()
        # The supervisor only starts and watches: it has loaded nothing of the application.
        supervisor = Path(f"/proc/{run.popen.pid}")
        assert "pydantic_core" not in (supervisor / "maps").read_text()
        assert _pss_mib(supervisor) < 40, "about a bare Python's 10 MB, not the app's 170"

        form = httpx.get(f"{url}/consult", timeout=5)
        assert form.status_code == 200 and "sms_marketing" in form.text
        response = httpx.post(
            f"{url}/consult",
            data={
                "first_name": "Eli",
                "email": "eli@example.com",
                "phone": "208-555-0166",
                "timezone": zone_where_it_is_daytime(),
                "sms_marketing": "on",
                "email_marketing": "on",
            },
            timeout=10,
        )
        assert response.status_code == 303, response.text

        outbox = var / "outbox"

        def delivered() -> bool:
            return len(outbox_files.texts(outbox)) == 1 and len(outbox_files.emails(outbox)) == 1

        wait_until(delivered, timeout=30, what="one SMS and one e-mail in var/outbox/")
        [sms] = outbox_files.texts(outbox)
        [mail] = outbox_files.emails(outbox)
        assert sms.to == "+12085550166"
        assert "STOP to opt out" in sms.body
        assert mail["To"] == "eli@example.com"
        assert mail["Subject"] == "We received your consultation request, Eli"
        # Issue 14: with no NURTURE_PUBLIC_URL set, the public URL follows the port, so the
        # links the web and the worker put in messages reach this server; the form's address
        # was printed once the server answered.
        assert f"nurture: sign-up form at {url}/consult" in run.output()
        # Beat ticked every second meanwhile: Celery's line per task and beat's per tick stay
        # out of the newcomer's terminal (NURTURE_LOG_TASKS=0 for `nurture run`'s children).
        assert "Task nurture.dispatch_due" not in run.output()
        assert "Sending due task" not in run.output()
        assert "celery@" in run.output()  # the worker's own start-up lines still show
        for process in celery + [p for p in _group(run.popen.pid) if b"serve" in _cmd(p)]:
            environ = (process / "environ").read_bytes().split(b"\0")
            assert f"NURTURE_PUBLIC_URL={url}".encode() in environ, _cmd(process)
    finally:
        # Ctrl-C in a terminal signals the whole process group.
        if run.popen.poll() is None:
            os.killpg(run.popen.pid, signal.SIGINT)
        code = run.stop(sig=signal.SIGINT, timeout=40)
    assert code == 0, run.output()[-3000:]
    leftovers = [
        (
            p.name,
            (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(),
            (p / "stat").read_text().split()[2],
        )
        for p in _group(run.popen.pid)
    ]
    # A zombie has already exited; it only waits for PID 1 to collect its exit status.
    leftovers = [entry for entry in leftovers if entry[2] != "Z"]
    assert leftovers == [], f"processes of `nurture run` survived Ctrl-C: {leftovers}"


def _group(group: int) -> list[Path]:
    return [p for p in Path("/proc").iterdir() if p.name.isdigit() and _in_group(p, group)]


def _in_group(proc: Path, group: int) -> bool:
    try:
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return int(fields[2]) == group  # pgrp


def _pss_mib(proc: Path) -> float:
    for line in (proc / "smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no Pss in {proc}/smaps_rollup")


def _cmd(proc: Path) -> bytes:
    return (proc / "cmdline").read_bytes()
