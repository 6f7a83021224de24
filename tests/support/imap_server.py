"""A real IMAP server on loopback: Debian's Dovecot, started by the test as its own process with
a temporary configuration and one passwd-file user (the way smtp_server.py starts aiosmtpd).

Mail is delivered into it with IMAP APPEND (real MIME bytes, stored as Dovecot stores any
delivery), and read back by the code under test over IMAP. `make dovecot` installs it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from imapclient import IMAPClient  # type: ignore[import-untyped]

from tests.support.smtp_server import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER = "replies@clinic.example"
PASSWORD = "test-password"  # a test mailbox on loopback


def _config(root: Path, port: int, owner: str, uid: int, gid: int) -> str:
    return f"""
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = nurture-test-{port}
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {owner}
default_internal_group = {owner}
default_login_user = {owner}
first_valid_uid = {uid}
last_valid_uid = {uid}
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


class ImapServer:
    def __init__(self) -> None:
        if not Path(DOVECOT).exists():
            raise RuntimeError(
                "these tests need Debian's Dovecot: run `make dovecot` "
                "(or: sudo apt-get install -y dovecot-imapd)"
            )
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="nurture-dovecot-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"imap://{USER.replace('@', '%40')}:{PASSWORD}@127.0.0.1:{self.port}/INBOX"

    def start(self) -> ImapServer:
        # As root, Dovecot's own unprivileged user runs it and owns the mail; otherwise we do.
        owner = "dovecot" if os.geteuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
        entry = pwd.getpwnam(owner)
        for folder in ("run", "state", "mail", "home"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        (self.root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        config = self.root / "dovecot.conf"
        config.write_text(_config(self.root, self.port, owner, entry.pw_uid, entry.pw_gid))
        if os.geteuid() == 0:
            for path in [self.root, *self.root.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)
        with (self.root / "stderr").open("wb") as stderr:
            self.process = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=stderr
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self._log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"dovecot did not listen on {self.port}: {self._log()}")

    def _log(self) -> str:
        found = [self.root / "stderr", self.root / "dovecot.log"]
        return "".join(path.read_text(errors="replace") for path in found if path.exists())

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        shutil.rmtree(self.root, ignore_errors=True)

    def client(self) -> IMAPClient:
        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        client.login(USER, PASSWORD)
        return client

    def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        """Put one message into the mailbox, unseen, as a delivery would."""
        with self.client() as client:
            client.append(folder, raw, flags=())

    def flags(self, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        with self.client() as client:
            client.select_folder(folder, readonly=True)
            uids = client.search(["ALL"])
            return {
                int(uid): tuple(data[b"FLAGS"])
                for uid, data in client.fetch(uids, [b"FLAGS"]).items()
            }
