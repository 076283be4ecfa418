#!/usr/bin/env bash
# Install what the project needs on a fresh machine; cheap to run again (it skips what is there).
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9

need_apt() {  # install Debian packages when a command is missing and we may (root)
  local cmd=$1; shift
  command -v "$cmd" >/dev/null 2>&1 && return 0
  if [[ $EUID -ne 0 ]]; then
    echo "bootstrap: '$cmd' is missing; install Debian package(s) $* (needs root)" >&2
    return 1
  fi
  if [[ ! -f .cache/apt-updated ]]; then
    apt-get update -qq && mkdir -p .cache && touch .cache/apt-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v uv >/dev/null 2>&1 || [[ "$(uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]]; then
  python3 -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
fi
need_apt java openjdk-17-jre-headless
need_apt mvn maven
# The dashboard's browser test drives Debian's headless Chromium through its chromedriver.
need_apt chromium chromium
need_apt chromedriver chromium-driver
# A CJK font, so the dashboard's screenshots show the Chinese names and texts, not boxes.
if ! fc-list :lang=zh 2>/dev/null | grep -q .; then
  need_apt fc-list-zh-font fonts-wqy-microhei || echo "bootstrap: no CJK font; screenshots show boxes" >&2
fi
# Only the compose-file check uses it; the rest of the suite does not need it.
need_apt docker-compose docker-compose || echo "bootstrap: docker-compose unavailable; the compose test will skip" >&2

# The interpreter: Debian's python3.11 where there is one (CREDITCTL_PYTHON names another). It
# is built with profile-guided and link-time optimisation, its executable not linked against a
# shared libpython; pyenv's default build (the `python3` first on this machine's PATH) is
# neither, and the same balance path cost it 9 % more instructions and 27-40 % more CPU an
# event (docs/benchmarks.md, fourteenth session). Elsewhere uv picks one as before.
python_for_venv=${CREDITCTL_PYTHON:-}
if [[ -z $python_for_venv && -x /usr/bin/python3.11 ]]; then
  python_for_venv=/usr/bin/python3.11
fi
# Bytecode compiled once here: where PYTHONDONTWRITEBYTECODE is set (this machine sets it),
# Python reads .pyc files but never writes them, so every process compiled every module it
# imported from source again: ~2.3 s of CPU per service or pytest process started, many
# times over in `make test` (a service's imports took 3.7 s against 1.4 s).
uv sync --frozen --quiet --compile-bytecode ${python_for_venv:+--python "$python_for_venv"}
uv run --frozen python -m compileall -q -j 0 libs/common/src services/*/src tools/*/src >/dev/null
