# shellcheck shell=bash
# Shared by scripts/run, scripts/test, scripts/bench and .ci/run (sourced, not run).
# Installs what Toast needs on a fresh machine: uv, the locked Python environment, and
# the Debian programs the sandbox runs. Safe to run again: it only installs what is missing.

TOAST_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export UV_PYTHON_DOWNLOADS=never
export UV_PROJECT_ENVIRONMENT="${UV_PROJECT_ENVIRONMENT:-$TOAST_ROOT/.venv}"

SANDBOX_DEBS="openssh-server nginx certbot python3-certbot-nginx pebble git sudo"
# The tests check every remote command Toast renders with shellcheck, and drive the real
# console through tmux as a user's terminal.
TEST_DEBS="shellcheck tmux"
# Node.js runs the sample apps' builds on the sandbox host (only when the machine has none).
NODE_DEBS="nodejs npm"

toast_log() { printf 'toast setup: %s\n' "$*" >&2; }

ensure_uv() {
  if command -v uv >/dev/null 2>&1; then
    UV=(uv)
  elif python3 -m uv --version >/dev/null 2>&1; then
    UV=(python3 -m uv)
  else
    toast_log "installing uv with pip"
    python3 -m pip install --quiet --disable-pip-version-check uv \
      || python3 -m pip install --quiet --disable-pip-version-check --user uv
    UV=(python3 -m uv)
  fi
}

ensure_debian_packages() {
  # $1 = "test" also installs what only the tests need (shellcheck, tmux).
  local missing="" wanted="$SANDBOX_DEBS"
  [ -x /usr/sbin/sshd ] || missing="$missing openssh-server"
  [ -x /usr/sbin/nginx ] || missing="$missing nginx"
  command -v certbot >/dev/null 2>&1 || missing="$missing certbot"
  command -v pebble >/dev/null 2>&1 || missing="$missing pebble"
  command -v git >/dev/null 2>&1 || missing="$missing git"
  command -v sudo >/dev/null 2>&1 || missing="$missing sudo"
  command -v node >/dev/null 2>&1 || missing="$missing nodejs"
  if [ "${1:-}" = "test" ]; then
    wanted="$wanted $TEST_DEBS"
    command -v shellcheck >/dev/null 2>&1 || missing="$missing shellcheck"
    command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
  fi
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    toast_log "Debian packages are missing:$missing"
    toast_log "install them with: sudo apt-get update && sudo apt-get install -y $wanted $NODE_DEBS"
    exit 1
  fi
  toast_log "installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086  # the list is meant to split into words
  apt-get install -y -qq $wanted >/dev/null
  if ! command -v node >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    apt-get install -y -qq $NODE_DEBS >/dev/null
  fi
}

ensure_python_env() {
  # Bytecode is compiled here, not on first import: where PYTHONDONTWRITEBYTECODE is set
  # (as on these machines) Python would otherwise compile every module on every start,
  # which doubled the time of each command and of the console's first paint.
  (cd "$TOAST_ROOT" && "${UV[@]}" sync --frozen --quiet --extra sandbox --compile-bytecode \
    && "$UV_PROJECT_ENVIRONMENT/bin/python" -m compileall -q -j 0 core cli storage tui >/dev/null)
}

toast_setup() {
  # $1: "test" (also the tests' programs) or "console" (only what the console needs).
  ensure_uv
  ensure_debian_packages "${1:-}"
  ensure_python_env
}

ensure_bench_tools() {
  # The tools users run instead of Toast's tail (awslogs, `sam logs --tail`), in an
  # environment of their own: measured side by side, never Toast dependencies.
  BENCH_TOOLS="${TOAST_BENCH_TOOLS:-$TOAST_ROOT/.bench-tools}"
  export TOAST_BENCH_TOOLS="$BENCH_TOOLS"
  if [ ! -x "$BENCH_TOOLS/bin/awslogs" ] || [ ! -x "$BENCH_TOOLS/bin/sam" ]; then
    toast_log "installing awslogs and aws-sam-cli for the tail comparison"
    "${UV[@]}" venv --quiet --python 3.11 "$BENCH_TOOLS"
    VIRTUAL_ENV="$BENCH_TOOLS" "${UV[@]}" pip install --quiet \
      "awslogs==0.15.0" "aws-sam-cli==1.170.0"
  fi
}
