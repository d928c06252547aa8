# The two commands of the README, and a few more for developers.
.PHONY: setup demo test lint bench

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
