"""For `make test-fast` only: staff passwords hashed with cheap argon2 parameters.

The production parameters cost ~0.1-0.2 s a hash, and most admin tests create a user and sign
in (two hashes) before they start: nearly half the fast loop's time. No test measures the cost
itself (the sign-in tests count hashes, they do not time them), so the edit loop trades it
away; `make test` keeps the real parameters and runs every test with them.

Loaded with ``-p tests.support.fast_hashing``. It fails loudly, rather than silently slowing
down, if `nurture.staff.accounts` stops keeping its hasher where this expects it.
"""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

CHEAP = PasswordHasher(time_cost=1, memory_cost=256, parallelism=1)


def pytest_configure(config: pytest.Config) -> None:
    # After tests/conftest.py has cleaned the environment: only then is the application imported.
    from nurture.staff import accounts as staff

    for name in ("_hasher", "_DUMMY_HASH"):
        if not hasattr(staff, name):
            raise pytest.UsageError(
                f"tests/support/fast_hashing.py: nurture.staff.accounts has no {name} any more; "
                "point this plugin at where the password hasher now lives"
            )
    staff._hasher = CHEAP  # a private name, on purpose: see above
    # Unknown addresses are checked against this hash: it must be as cheap as a real user's.
    staff._DUMMY_HASH = CHEAP.hash("not-a-real-password-0123456789")
