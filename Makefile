# The two commands of the README, and a few more for developers.
.PHONY: setup demo test lint bench security

setup:
	@bash scripts/setup.sh

# The main job: apply the repository's own manifests/ against the embedded emulator (no API key).
demo: setup
	.venv/bin/reconciler apply --auto-approve --wait
	.venv/bin/reconciler status

# Everything CI runs: lint, types, architecture contracts, and the test suite (not the slow marks).
test: lint
	.venv/bin/python -m pytest -m "not slow" -n 2 -q

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
