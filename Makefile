# The two commands of the quick start:
#   make run   - start the whole pipeline locally (master, worker, trigger; SQLite; example tasks)
#   make test  - install test prerequisites (Debian packages, PyPI peers venv), then run every test
.PHONY: run test build lint fmt bench

CARGO ?= cargo

build:
	$(CARGO) build --workspace --bins

run:
	scripts/run-local

test:
	scripts/test-deps
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --no-fail-fast

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

bench:
	$(CARGO) bench --workspace
