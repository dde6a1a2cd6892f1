#!/usr/bin/env bash
# Builds daprd, placement and scheduler of the pinned Dapr release into bin/
# for the tests on real sidecars (internal/daprtest).
#
# `go install github.com/dapr/dapr/cmd/daprd@v1.14.0` refuses (the module
# has replace directives), so this builds inside a writable copy of the
# module from the module cache. It needs only the Go module proxy (or a
# warm module cache). The build is skipped when the binaries exist and
# bin/.dapr-version names the pinned version. Cold (modules downloaded and
# compiled) it takes about five minutes on two busy cores; with a warm Go
# build cache, under a minute.
set -euo pipefail

DAPR_VERSION="${DAPR_VERSION:-v1.14.0}"
GO="${GO:-go}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${DAPR_BIN_DIR:-$ROOT/bin}"
STAMP="$BIN/.dapr-version"

if [[ -x "$BIN/daprd" && -x "$BIN/placement" && -x "$BIN/scheduler" && -f "$STAMP" && "$(cat "$STAMP")" == "$DAPR_VERSION" ]]; then
  echo "daprd, placement and scheduler $DAPR_VERSION are in $BIN"
  exit 0
fi

mkdir -p "$BIN"
start=$(date +%s)
work="$(mktemp -d "${TMPDIR:-/tmp}/dapr-build.XXXXXX")"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

echo "downloading github.com/dapr/dapr@$DAPR_VERSION"
# Outside any module, so this repository's go.mod is not touched; -json
# prints the module's directory in the module cache.
dir="$(cd "$work" && GOWORK=off GOFLAGS= "$GO" mod download -json "github.com/dapr/dapr@$DAPR_VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [[ -z "$dir" || ! -d "$dir" ]]; then
  echo "build-dapr: module directory of github.com/dapr/dapr@$DAPR_VERSION not found" >&2
  exit 1
fi

cp -R "$dir/." "$work/"
chmod -R u+w "$work"

echo "building daprd, placement and scheduler (tags stablecomponents) in $work"
# The copy is outside any workspace; its own go.mod and go.sum decide.
# Without a component tag daprd panics at start.
(cd "$work" && GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 "$GO" build -trimpath \
  -tags stablecomponents \
  -ldflags "-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=${DAPR_VERSION#v}" \
  -o "$BIN/" ./cmd/daprd ./cmd/placement ./cmd/scheduler)

echo "$DAPR_VERSION" >"$STAMP"
echo "built daprd, placement and scheduler $DAPR_VERSION into $BIN in $(( $(date +%s) - start ))s"
