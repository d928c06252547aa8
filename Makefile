# The two commands of the README, and a few more for developers.
.PHONY: setup setup-runtime demo test test-slow lint bench security test-live

# The tool with the test and lint toolchains (and the Node tools when npm is present).
setup:
	@bash scripts/setup.sh test

# The tool and its runtime dependencies only: what `make demo` needs.
setup-runtime:
	@bash scripts/setup.sh runtime

# The main job: apply the repository's own manifests/ against the embedded emulator (no API key).
demo: setup-runtime
	.venv/bin/reconciler apply --auto-approve --wait
	.venv/bin/reconciler status

# Everything CI runs: lint, types, architecture contracts, and the default test run (not the
# slow marks; under ~10 minutes). Under CI=true, where a run may take 90 minutes, the slow suites
# run after it (`make test-slow`; .ci/run lists them). A pytest that selects no test exits 5: a
# failure here too.
test: lint
	.venv/bin/python -m pytest -m "not slow" -n 2 -q
	@if [ "$${CI:-}" = true ]; then $(MAKE) --no-print-directory test-slow; fi

# The slow suites (`@pytest.mark.slow`; .ci/run lists them), and the property tests again at
# their full example counts (the default run tries a fifth: tests/fixtures/properties.py).
test-slow: setup
	RECONCILER_TEST_EXAMPLES=full .venv/bin/python -m pytest -m "slow or property" -n 2 -q

# Lint, types and the import contracts (pyproject.toml [tool.importlinter]): no tests.
lint: setup
	.venv/bin/ruff check reconciler tests benchmarks
	.venv/bin/ruff format --check reconciler tests benchmarks
	.venv/bin/mypy
	.venv/bin/lint-imports

bench: setup
	.venv/bin/python -m benchmarks

# Hostile input (fuzzing included), secret handling and plan tampering, with a table of cases
# tried / held / failed per category (tests/security/conftest.py).
security: setup
	.venv/bin/python -m pytest tests -m "hostile_input or secret_scan or plan_tampering" -n 2 -q -rN \
	  -p tests.security.report

# The live suite against the real Gemini API: tiny jobs, a few cents at most, everything it made
# deleted. Needs GEMINI_API_KEY; never part of `make test` (which runs it against the emulator).
test-live: setup
	@test -n "$${GEMINI_API_KEY:-}" || { echo "make test-live: set GEMINI_API_KEY (it runs against the real API)" >&2; exit 1; }
	RECONCILER_LIVE_ENDPOINT=gemini .venv/bin/python -m pytest -m live -n 0 tests/live
