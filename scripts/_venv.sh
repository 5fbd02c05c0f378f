# shellcheck shell=bash
# Shared helper for scripts/test and scripts/demo (sourced, not run).
#
#   source scripts/_venv.sh && vpa_ensure_venv
#
# Creates <repo>/.venv with python3 (or $PYTHON) when it is missing or broken, and installs the
# project into it (`pip install -e '.[test]'`). The install is skipped while a stamp file in .venv
# shows that pyproject.toml has not changed since the last successful install; the package itself
# is installed editable, so source changes never need a reinstall.

VPA_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

_vpa_sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

vpa_ensure_venv() {
  local root="$VPA_REPO_ROOT"
  local venv="$root/.venv"
  local py="${PYTHON:-python3}"
  local stamp="$venv/.vpa-install.sha256"

  if ! "$venv/bin/python" -c 'pass' >/dev/null 2>&1; then
    command -v "$py" >/dev/null 2>&1 || { echo "ERROR: $py not found (Python 3.11+ is needed)" >&2; return 1; }
    if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      echo "ERROR: $py is $("$py" -V 2>&1); the project needs Python 3.11+ (set PYTHON=python3.11)" >&2
      return 1
    fi
    echo "creating $venv with $("$py" -V 2>&1) ..." >&2
    if ! "$py" -m venv --clear "$venv"; then
      echo "ERROR: '$py -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2
      return 1
    fi
    rm -f "$stamp"
  fi

  local want have=""
  want="$(_vpa_sha256 "$root/pyproject.toml")"
  [[ -f "$stamp" ]] && have="$(cat "$stamp")"
  if [[ "$want" != "$have" ]]; then
    echo "installing the project into .venv (pip install -e '.[test]') ..." >&2
    (cd "$root" && "$venv/bin/python" -m pip install -q -e '.[test]') || return 1
    echo "$want" >"$stamp"
  else
    echo ".venv is up to date with pyproject.toml (install skipped)" >&2
  fi
}
