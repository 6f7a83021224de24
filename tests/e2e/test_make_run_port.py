"""Issue 14's first hour, end to end: `make run PORT=…`, a sign-up in the browser, and the
unsubscribe link in the e-mail that lands in var/outbox/ opens the preferences page on that same
port. The unit and integration tests check the pieces (the public URL follows `--port`, the
children inherit it); this one walks the path a newcomer walks, through the Makefile itself.
"""

from __future__ import annotations

import os
import re
import signal
from email.message import EmailMessage
from pathlib import Path

import yaml
from playwright.sync_api import Browser, expect

from tests.integration.conftest import app_env
from tests.support import outbox_files
from tests.support.daytime import config_texting_at_any_hour
from tests.support.processes import Process, free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"https?://[^\s<>\"]+/u/[A-Za-z0-9._~-]+")


def _marketing_email_at_once(target: Path) -> Path:
    """The shipped config, but the first marketing e-mail (the one that carries the
    unsubscribe link; the welcome is care mail and has none) goes at sign-up, at any hour, so
    the test does not wait a day or depend on when it runs."""
    config_texting_at_any_hour(target)
    policy_file = target / "policy.yaml"
    policy = yaml.safe_load(policy_file.read_text())
    policy["windows"]["email"]["marketing"] = {"days": "all", "start": "00:00", "end": "24:00"}
    policy_file.write_text(yaml.safe_dump(policy, allow_unicode=True))
    sequence_file = target / "sequences" / "consult-nurture.yaml"
    sequence = yaml.safe_load(sequence_file.read_text())
    [nudge] = [s for s in sequence["steps"] if s["key"] == "booking-nudge-email-1"]
    nudge["offset"] = "0s"
    nudge.pop("at", None)
    sequence_file.write_text(yaml.safe_dump(sequence, allow_unicode=True))
    return target


def test_make_run_on_another_port_puts_that_port_in_the_unsubscribe_link(
    browser: Browser, tmp_path: Path, artifacts: Path
) -> None:
    port = free_port()
    var = tmp_path / "var"
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    # No NURTURE_PUBLIC_URL: the point is that the embedded default derives it from PORT.
    env = app_env(
        NURTURE_VAR_DIR=str(var),
        NURTURE_CONFIG_DIR=str(_marketing_email_at_once(tmp_path / "config")),
        NURTURE_DISPATCH_INTERVAL="1",
    )
    assert "NURTURE_PUBLIC_URL" not in env
    run = Process(
        "make-run",
        ["make", "--no-print-directory", "-C", str(REPO), "run", f"PORT={port}"],
        env=env,
        log_dir=log_dir,
        new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        run.wait_for_http(f"{url}/healthz", timeout=90)
        run.wait_for_output(rf"sign-up form at http://[^\s]+:{port}/consult", timeout=60)

        page = browser.new_page()
        page.goto(f"{url}/consult")
        page.fill("#first_name", "Nora")
        page.fill("#email", "nora@example.com")
        page.check("#email_marketing")
        page.click("button[type=submit]")
        expect(page).to_have_url(f"{url}/consult/thanks")

        outbox = var / "outbox"

        def marketing_mail() -> list[EmailMessage]:
            return [m for m in outbox_files.emails(outbox) if m["List-Unsubscribe"]]

        wait_until(marketing_mail, timeout=45, what="the first marketing e-mail")
        [mail] = marketing_mail()
        header = str(mail["List-Unsubscribe"])
        assert f":{port}/" in header, header
        text = mail.get_body(preferencelist=("plain",))
        assert text is not None
        links = LINK.findall(text.get_content())
        assert links, "the e-mail's text part carries an unsubscribe link"
        assert all(f"127.0.0.1:{port}/" in link or f"localhost:{port}/" in link for link in links)

        page.goto(links[0])
        expect(page.locator("h1")).to_have_text("Choose what you receive")
        assert f":{port}/u/" in page.url
        page.screenshot(path=str(artifacts / "preferences-from-email.png"), full_page=True)
        page.close()
    finally:
        if run.popen.poll() is None:
            os.killpg(run.popen.pid, signal.SIGINT)
        code = run.stop(sig=signal.SIGINT, timeout=40)
    # Ctrl-C reaches make too, and make re-raises it on itself once nurture has exited.
    assert code in (0, -signal.SIGINT), run.output()[-3000:]
    assert "Traceback" not in run.output()
