#!/usr/bin/env bash
# One command for the whole benchmark: bench/run.sh [--quick] [--litellm] [--out results.json]
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for tool in wrk nginx redis-server; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light redis-server >/dev/null
  else
    echo "bench: missing ${missing[*]}; install wrk, nginx-light and redis-server" >&2
    exit 1
  fi
fi
python3 -m pip install --quiet --disable-pip-version-check -e . 2>/dev/null || true
exec python3 bench/run.py "$@"
