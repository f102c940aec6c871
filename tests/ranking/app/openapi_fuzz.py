"""The bounded schemathesis run of ``test_service_limits``, in a process of its own.

schemathesis is a pytest plugin, so under pytest every one of its modules is rewritten for
assertions when first imported, and schemathesis imports some of them lazily while it
generates cases. Rewritten deep in the suite, CPython 3.11.7's ``ast.parse`` raised "AST
constructor recursion depth mismatch" (CI, twice, in two different lazy modules). Run with
``python -m tests.ranking.app.openapi_fuzz BUNDLE``, nothing is rewritten; it prints the
status codes seen per operation as JSON and exits non-zero on any server error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from ranking.app.service import create_app


def fuzz(bundle: Path) -> dict[str, set[int]]:
    """A bounded schemathesis run (valid and invalid inputs, 60 examples per operation and
    mode), in process over ASGI, with the admin token so the config endpoints are reached."""
    token = "fuzz-token-0123456789"
    app = create_app(bundle, admin_token=token)
    app.state.service.load()  # the lifespan's load, synchronously
    assert app.state.service.ranker is not None
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    statuses: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=60, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case: schemathesis.Case) -> None:
                case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
                response = case.call()
                statuses.setdefault(case.operation.label, set()).add(response.status_code)
                assert response.status_code < 500, (case.as_curl_command(), response.text[:300])

            try:
                call()
            except Unsatisfiable:  # nothing to make invalid (an operation without inputs)
                assert mode is GenerationMode.NEGATIVE, operation.label
    return statuses


if __name__ == "__main__":
    seen = fuzz(Path(sys.argv[1]))
    print(json.dumps({label: sorted(codes) for label, codes in seen.items()}))
