#!/usr/bin/env bash
# Run objget's whole test suite (unit, functional, integration with real servers, faults, compat).
#
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh tests/unit -q   # extra arguments go to pytest
#
# On a fresh Debian machine it first installs what the tests need: as root the Debian packages
# (nginx, iptables, strace, libfiu, aria2, ...), then a virtualenv in .venv with objget and its
# test dependencies. A second run skips what is already there.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DEBIAN_PACKAGES=(
  nginx-light iptables strace fiu-utils libfiu0 aria2 time openssl iproute2
  e2fsprogs util-linux fuse3 libfuse2 python3-venv
)
EXTRAS="test,oss,s3,ray"
EXTRA_PIP=(boto3)  # used by the SeaweedFS fixture (tests/_servers/seaweed.py)
PYTHON="${PYTHON:-python3}"
VENV=.venv

say() { printf '%s\n' "test.sh: $*" >&2; }

missing_debian_packages() {
  local pkg missing=()
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  printf '%s\n' "${missing[@]}"
}

install_debian_packages() {
  command -v dpkg-query >/dev/null 2>&1 || { say "not a Debian system: skipping system packages"; return 0; }
  local missing
  mapfile -t missing < <(missing_debian_packages | sed '/^$/d')
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    say "WARNING: missing Debian packages (run as root to install them): ${missing[*]}"
    say "tests that need them will fail"
    return 0
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# A stamp in the venv records what was installed; it changes when pyproject.toml does.
deps_stamp() {
  {
    cat pyproject.toml
    echo "$EXTRAS ${EXTRA_PIP[*]}"
    "$VENV/bin/python" -c 'import sys; print(sys.version)'
  } | sha256sum | cut -d' ' -f1
}

install_python_packages() {
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV with $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
    "$PYTHON" -m venv "$VENV"
  fi
  local stamp_file="$VENV/.objget-test-deps" want
  want=$(deps_stamp)
  if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$want" ] \
      && "$VENV/bin/python" -c 'import objget, boto3, pytest' 2>/dev/null; then
    return 0
  fi
  say "installing objget[$EXTRAS] ${EXTRA_PIP[*]} into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[$EXTRAS]" "${EXTRA_PIP[@]}"
  echo "$want" > "$stamp_file"
}

install_debian_packages
install_python_packages

set +e
"$VENV/bin/python" -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  say "FAILED: pytest collected no tests (exit 5)"
  exit 1
fi
exit "$status"
