"""Schemathesis over the project's own OpenAPI document: no generated request is a 500.

In-process (ASGI) on a fresh SQLite database with the API key set. Webhooks answer 403
without Twilio's signature, which is not a server error. Bounded: 40 examples per operation
and mode, derandomized so CI sees the same cases every run.

Schemathesis's own pytest plugin (`schema.parametrize()` on a fixture) breaks on pytest 9
(it reads `request.node._nodeid`), so each operation's strategy is run with Hypothesis here.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from nurture.leads.signup_limits import SignupLimiter
from nurture.runtime import Services
from nurture.web import create_app
from tests.support.factories import sign_up

API_KEY = {"Authorization": "Bearer test-api-key"}
EXAMPLES_PER_OPERATION = 40


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_request_is_a_server_error(services: Services, mode: GenerationMode) -> None:
    # Generous sign-up limits: otherwise nearly every generated sign-up is a 429 and the
    # intake behind the limiter is never reached.
    services.signup_limiter = SignupLimiter(
        "memory://", per_ip="100000 per second", per_phone="100000 per second"
    )
    lead_id = str(sign_up(services))
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(services))
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    # Every operation is valid, and only the JSON API and the webhooks are listed: Twilio's
    # two, four booking tools', four e-mail providers'.
    assert len(operations) == 14
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def no_server_error(case: Any) -> None:
            # Half the lead ids are a real lead's, so events reach the lifecycle, not a 404.
            parameters = case.path_parameters or {}
            if "lead_id" in parameters and str(parameters["lead_id"])[:1] < "8":
                parameters["lead_id"] = lead_id
            case.call_and_validate(headers=API_KEY, checks=[not_a_server_error])

        try:
            no_server_error()
        except Unsatisfiable:
            # Nothing to break: the webhooks declare no parameters (the form is Twilio's).
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as error:  # every operation's failure in one report
            failures.append(f"{operation.label}: {error}")
    assert not failures, "\n\n".join(failures)
