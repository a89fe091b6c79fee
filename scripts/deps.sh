#!/usr/bin/env bash
# Installs the Debian packages shelf needs to build, test and run its demo.
# Usage: scripts/deps.sh [--check] [--bench]
#   --check: exit 1 if anything is missing, install nothing
#   --bench: also what the benchmarks need (python3-torch for the PyTorch
#            reference of bench/train_transformer.sh); make bench passes it
set -euo pipefail

check=0 bench=0
for a in "$@"; do
  case "$a" in
    --check) check=1 ;;
    --bench) bench=1 ;;
    *) echo "deps: unknown option '$a' (usage: scripts/deps.sh [--check] [--bench])" >&2; exit 2 ;;
  esac
done

PKGS=(
  gcc clang make cmake pkg-config
  libsqlite3-dev sqlite3
  libopenblas-openmp-dev
  libcjson-dev libutf8proc-dev libxxhash-dev libcmocka-dev libssl-dev
  zlib1g-dev liblzma-dev xz-utils gzip
  libmicrohttpd-dev libcsv-dev curl wrk
  python3-numpy python3-scipy python3-cffi python3-pytest python3-setuptools python3-venv python3-wheel time
)
[ "$bench" = 1 ] && PKGS+=(python3-torch)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "$check" = 1 ]; then
  [ ${#missing[@]} -eq 0 ] && exit 0
  echo "missing packages: ${missing[*]}" >&2
  exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: not root and no sudo: install ${missing[*]} by hand" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
