"""Reading a booking tool's API (Acuity's appointment, Square's customer): a timeout on every
try, a few tries for what may pass (a timeout, a refused connection, 429, 5xx), and never
inside a database transaction — the caller fetches first, then opens one."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import requests

log = logging.getLogger(__name__)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class FetchError(Exception):
    """The API did not answer with the record; ``retryable``: the provider should retry the
    webhook (answered 503) rather than give up on it (a 4xx from the API)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class Fetcher:
    timeout: float
    attempts: int
    backoff: float = 0.5

    def get_json(
        self,
        url: str,
        *,
        what: str,
        auth: tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        problem = ""
        for attempt in range(1, self.attempts + 1):
            try:
                response = requests.get(
                    url, auth=auth, headers=headers, timeout=self.timeout, allow_redirects=False
                )
            except requests.RequestException as error:
                problem = f"{type(error).__name__}"
            else:
                if response.status_code == 200:
                    try:
                        data = response.json()
                    except ValueError:
                        raise FetchError(
                            f"{what}: the answer is not JSON", retryable=True
                        ) from None
                    if not isinstance(data, dict):
                        raise FetchError(f"{what}: the answer is not an object", retryable=True)
                    return data
                problem = f"HTTP {response.status_code}"
                if response.status_code not in RETRY_STATUSES:
                    raise FetchError(f"{what}: {problem}", retryable=False)
            log.warning(
                "fetching %s failed (try %d of %d): %s", what, attempt, self.attempts, problem
            )
            if attempt < self.attempts:
                time.sleep(self.backoff * 2 ** (attempt - 1))
        raise FetchError(f"{what}: {problem} after {self.attempts} tries", retryable=True)
