#!/usr/bin/env bash
# setup.sh: installs the Debian packages mpg needs. Idempotent: when every package is
# already present it only runs dpkg-query once and exits (well under a second).
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git clang libclang-rt-14-dev
  libboost-context-dev libboost-fiber-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libhttp-parser-dev libcli11-dev nlohmann-json3-dev liburing-dev
  golang-go wrk nginx-light gnuplot-nox python3 procps linux-perf curl
)

missing=()
for p in "${PKGS[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$st" == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# nginx-light's package starts a system nginx on :80; mpg never uses it (the showdown writes its
# own config into a temp dir), so stop it where a service manager runs it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
  $SUDO systemctl stop nginx || true
fi
echo "setup: done" >&2
