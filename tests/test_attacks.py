"""What one client can do to everybody: patterns that compile to gigabytes, bodies sent a byte at a time. Each
attack runs here, bounded in time and memory, and the platform stays up for the others."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
import uuid

import pytest
from fastapi.testclient import TestClient

from coderai_api.main import create_app
from tests.test_api import login_as

ATTACK_PATTERNS = ["(?:a{1000}){1000}", "(?:(?:a{1000}){1000}){4}", "a{100000}", "(?:ab|cd){50000}", "x" * 1001]


@pytest.fixture
def client(database, settings):
    with TestClient(create_app(settings), base_url="http://test/api/v1") as client:
        login_as(client, f"attacker-{uuid.uuid4().hex[:8]}@example.org")
        yield client


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_pattern_that_would_compile_to_gigabytes_is_refused_before_it_is_compiled(client):
    project = client.post("/projects", json={"name": "p", "domain_description": "d"}).json()
    before, start = _peak_mb(), time.perf_counter()
    for i, pattern in enumerate(ATTACK_PATTERNS):
        body = {"name": f"code_{i}", "type": "text", "validation": {"pattern": pattern}}
        response = client.post(f"/projects/{project['id']}/variables", json=body)
        assert (response.status_code, response.json()["code"]) == (422, "invalid_pattern"), pattern
        assert "at most" in response.json()["message"]
    # Each of these cost 250 MB to 1.7 GB, and seconds, when it was compiled.
    assert time.perf_counter() - start < 5 and _peak_mb() - before < 100
    fine = {"name": "iso_code", "type": "text", "validation": {"pattern": r"^[A-Z]{2}(?:-[A-Z0-9]{1,3})?$"}}
    assert client.post(f"/projects/{project['id']}/variables", json=fine).status_code == 201


def test_a_stored_pattern_over_the_bound_makes_values_invalid_never_a_failed_run():
    from coderai_assets.engine.coercion import coerce_value
    from coderai_assets.engine.variables import VariableSpec

    spec = VariableSpec(name="code", type="text", validation={"pattern": "(?:a{1000}){1000}"})
    result = coerce_value(spec, "aaa")
    assert result.status == "invalid" and "cannot be used" in result.message


def test_the_largest_pattern_allowed_compiles_within_a_small_memory_bound():
    """Under an address-space limit of 512 MB, in a process of its own: patterns at the bound compile."""
    from coderai_assets.engine.patterns import MAX_EXPANSION, MAX_PATTERN_CHARS, expansion

    largest = [f"a{{{MAX_EXPANSION}}}", f"(?:[a-z]{{100}}){{{MAX_EXPANSION // 101}}}", "(?:ab|cd)" * 110]
    for pattern in largest:
        assert expansion(pattern) <= MAX_EXPANSION and len(pattern) <= MAX_PATTERN_CHARS, pattern
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (512 * 2**20, 512 * 2**20))\n"
        "from coderai_assets.engine.patterns import compile_pattern\n"
        "for p in sys.argv[1:]:\n"
        "    compile_pattern(p)\n"
        # The peak of this process alone (ru_maxrss would carry the forking parent's across exec).
        "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) // 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, *largest], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) < 200  # MB at its peak, the interpreter and the engine included
