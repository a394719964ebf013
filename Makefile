# The two commands of the README: `make run` and `make test`. Every install step lives here.
#
# PYTHON picks the interpreter ficus embeds and the venv is built with (default python3.11;
# `PYTHON=python3.12 make run` works too, pyenv versions included).

PYTHON ?= python3.11
VENV ?= .venv
CARGO ?= cargo
BIND ?= 127.0.0.1:8000
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

# The real interpreter behind $(PYTHON), found through pyenv when it is not on PATH.
PYTHON_BIN := $(shell $(PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null || \
	{ v=$$(echo "$(PYTHON)" | sed -n 's/^python\([0-9.]*\)$$/\1/p'); \
	  [ -n "$$v" ] && command -v pyenv >/dev/null && \
	  PYENV_VERSION=$$(pyenv versions --bare | grep "^$$v" | tail -n 1) pyenv which "$(PYTHON)"; })
PY_VERSION := $(shell $(PYTHON_BIN) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV_PY := $(VENV)/bin/python
STAMP := $(VENV)/.ficus-$(PY_VERSION)
LEGACY := legacy_django
DB := $(LEGACY)/var/db.sqlite3

export PYO3_PYTHON := $(PYTHON_BIN)

.PHONY: run test test-postgres build venv db check-python routes check browser sqlite reload

run: db build
	$(TARGET_DIR)/release/ficus serve --venv $(VENV) -b $(BIND) --access-logfile -

test: venv browser sqlite
	$(CARGO) build
	FICUS_TEST_VENV=$(abspath $(VENV)) INSTA_UPDATE=no $(CARGO) test --workspace -- --test-threads 2
	cd $(LEGACY) && ../$(VENV_PY) manage.py test --noinput
	scripts/with-postgres $(MAKE) --no-print-directory test-postgres

# The same project on a real PostgreSQL (Debian's, installed when missing, started on a free
# local port by scripts/with-postgres): Rust handlers held to Django's answers, the walk
# against runserver, one login shared by both sides, and the Django tests.
test-postgres:
	FICUS_TEST_VENV=$(abspath $(VENV)) $(CARGO) test --test ported_routes --test legacy_parity --test sessions --test files_and_streams -- --test-threads 2
	cd $(LEGACY) && ../$(VENV_PY) manage.py test --noinput

build: venv sqlite
	$(CARGO) build --release

# The migration at a glance, and routes.toml checked against the handlers and Django's URLconf.
routes: db build
	$(TARGET_DIR)/release/ficus routes --venv $(VENV)

check: db build
	$(TARGET_DIR)/release/ficus check --venv $(VENV)

# Tell the server `make run` started to read routes.toml again (the kill switch).
reload:
	$(TARGET_DIR)/release/ficus reload

# Debian packages, installed as root or through sudo (refreshing the lists once if needed).
APT_INSTALL = sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	$$sudo apt-get install -y --no-install-recommends $(1) >/dev/null \
	|| { $$sudo apt-get update >/dev/null && $$sudo apt-get install -y --no-install-recommends $(1) >/dev/null; }

# The dashboard is tested in a real browser: Debian's Chromium, installed once.
browser:
	@command -v chromium >/dev/null || { \
		echo "installing Debian's chromium for the dashboard test"; \
		$(call APT_INSTALL,chromium); }

# ficus links the system libsqlite3, the one Python's sqlite3 module loads (one SQLite per
# process), so building needs its development files.
sqlite:
	@pkg-config --exists sqlite3 2>/dev/null || { \
		echo "installing Debian's libsqlite3-dev (ficus links the SQLite Python's sqlite3 loads)"; \
		$(call APT_INSTALL,libsqlite3-dev pkg-config); }

check-python:
	@test -n "$(PY_VERSION)" || { echo "ficus: $(PYTHON) was not found; install CPython 3.11 (or set PYTHON=python3.X)"; exit 1; }

venv: check-python $(STAMP)

# A venv for another Python version is rebuilt rather than reused: ficus refuses mismatches.
$(STAMP): $(LEGACY)/requirements.txt
	@if [ -x $(VENV_PY) ] && [ "$$($(VENV_PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PY_VERSION)" ]; then \
		echo "rebuilding $(VENV) for Python $(PY_VERSION)"; rm -rf $(VENV); fi
	@[ -x $(VENV_PY) ] || $(PYTHON_BIN) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check -r $(LEGACY)/requirements.txt
	@rm -f $(VENV)/.ficus-*
	@touch $@

# Migrates every time (cheap), seeds only a new database so data made through the site stays.
db: venv
	@mkdir -p $(LEGACY)/var
	@new=0; [ -f $(DB) ] || new=1; \
	cd $(LEGACY) && ../$(VENV_PY) manage.py migrate --noinput -v 0 && \
	if [ $$new = 1 ]; then ../$(VENV_PY) manage.py seed --articles 50 --seed 42; fi && \
	../$(VENV_PY) manage.py collectstatic --noinput -v 0
