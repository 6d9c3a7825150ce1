"""Property-based requests from the OpenAPI spec (schemathesis) never get a 5xx answer."""

from __future__ import annotations

from typing import Any

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok


def test_no_server_errors(api: FastAPI, env: Any) -> None:
    """As admin (every endpoint reachable): generated requests of every operation answer < 500.

    Errors answer with a JSON ``detail``. Bounded: 8 examples per operation, derandomized.
    """
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", api)
    headers = {"Authorization": f"Bearer {env.tokens['root']}"}
    results = list(schema.get_all_operations())
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert len(operations) == len(results), [r for r in results if not isinstance(r, Ok)]
    assert len(operations) >= 25
    calls: dict[str, int] = {}
    for operation in operations:

        @settings(
            max_examples=8,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = case.call(headers=headers)
            label = f"{case.method} {case.formatted_path}"
            calls[f"{case.method} {case.operation.path}"] = response.status_code
            assert response.status_code < 500, (label, response.text)
            if response.status_code >= 400 and "json" in response.headers.get("content-type", ""):
                assert "detail" in response.json(), (label, response.text)

        run()
    assert len(calls) == len(operations)
