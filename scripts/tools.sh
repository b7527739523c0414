#!/usr/bin/env bash
# Install what the build and tests need and a fresh machine may lack.
#   scripts/tools.sh system      apt packages: JDK 17, Maven, PostgreSQL server (run as root)
#   scripts/tools.sh python      uv, then the locked Python environment (.venv)
#   scripts/tools.sh jars        the JVM jars from Maven Central (cached in ~/.cache/iotpipe/jars)
#   scripts/tools.sh checkov     checkov, in its own tool environment
#   scripts/tools.sh all         all of the above
# Everything is cached outside the clone, keyed by version, so a second run is quick.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${IOTPIPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iotpipe}"
BIN="$CACHE/bin"
mkdir -p "$BIN"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "apt-get install ${missing[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

system() {
  local pkgs=(postgresql)
  command -v java >/dev/null || pkgs+=(openjdk-17-jdk-headless)
  command -v mvn >/dev/null || pkgs+=(maven)
  apt_install "${pkgs[@]}"
}

python_env() {
  if ! command -v uv >/dev/null; then
    say "installing uv"
    python3 -m pip install -q --disable-pip-version-check uv
  fi
  say "uv sync (locked)"
  uv sync --frozen --all-packages -q
}

jars() {
  say "JVM jars (Maven Central)"
  uv run --frozen iotpipe jars >/dev/null
}

# checkov (chart manifests, Dockerfiles, Terraform) in an isolated tool environment.
CHECKOV_VERSION=3.3.30
checkov_tool() {
  if [ ! -x "$BIN/checkov" ] || ! "$BIN/checkov" --version 2>/dev/null | grep -q "$CHECKOV_VERSION"; then
    say "installing checkov $CHECKOV_VERSION"
    UV_TOOL_DIR="$CACHE/uv-tools" UV_TOOL_BIN_DIR="$BIN" uv tool install -q --force "checkov==$CHECKOV_VERSION"
  fi
}

case "${1:-all}" in
  system) system ;;
  python) python_env ;;
  jars) jars ;;
  checkov) checkov_tool ;;
  all) system; python_env; jars; checkov_tool ;;
  *) echo "usage: $0 [system|python|jars|checkov|all]" >&2; exit 2 ;;
esac
