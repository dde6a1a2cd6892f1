#!/usr/bin/env bash
# Builds daprd, placement and scheduler of the pinned Dapr release into bin/
# for the tests on real sidecars (internal/daprtest).
#
# `go install github.com/dapr/dapr/cmd/daprd@v1.16.0` refuses (the module
# has replace directives), so this builds inside a writable copy of the
# module from the module cache. It needs only the Go module proxy (or a
# warm module cache). The version is stamped with the ldflags of Dapr's own
# Makefile, so `daprd --version` prints it and the logs carry it. The build
# is skipped when the binaries exist and bin/.dapr-version names the pinned
# version. With an empty Go build cache (modules already downloaded) it
# takes about 12 CPU-minutes: 40 minutes on two cores shared with other
# builds. With a warm one, about a minute (copy and link).
#
# Why v1.16.0 and not a later 1.16 patch or 1.17: their scheduler needs
# github.com/diagridio/go-etcd-cron versions the module proxy does not
# serve (and 1.17 a components-contrib zip it refuses), so they do not
# build here.
set -euo pipefail

DAPR_VERSION="${DAPR_VERSION:-v1.16.0}"
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
# prints the module's directory and, from the proxy's origin record, the
# commit the tag points at.
info="$(cd "$work" && GOWORK=off GOFLAGS= "$GO" mod download -json "github.com/dapr/dapr@$DAPR_VERSION")"
field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}$/\1/p" <<<"$info" | head -n 1; }
dir="$(field Dir)"
commit="$(field Hash)"
if [[ -z "$dir" || ! -d "$dir" ]]; then
  echo "build-dapr: module directory of github.com/dapr/dapr@$DAPR_VERSION not found" >&2
  exit 1
fi

cp -R "$dir/." "$work/"
chmod -R u+w "$work"

# Dapr's Makefile: buildinfo.version is what --version and the metadata API
# print, gitversion is `git describe` (the tag), and the logger's
# DaprVersion goes into every log line.
ldflags="-s -w"
ldflags+=" -X github.com/dapr/dapr/pkg/buildinfo.version=${DAPR_VERSION#v}"
ldflags+=" -X github.com/dapr/dapr/pkg/buildinfo.gitversion=$DAPR_VERSION"
ldflags+=" -X github.com/dapr/dapr/pkg/buildinfo.gitcommit=$commit"
ldflags+=" -X github.com/dapr/kit/logger.DaprVersion=${DAPR_VERSION#v}"

echo "building daprd, placement and scheduler (tags stablecomponents) in $work"
# The copy is outside any workspace; its own go.mod and go.sum decide.
# Without a component tag daprd panics at start.
(cd "$work" && GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 "$GO" build -trimpath \
  -tags stablecomponents -ldflags "$ldflags" \
  -o "$BIN/" ./cmd/daprd ./cmd/placement ./cmd/scheduler)

got="$("$BIN/daprd" --version)"
if [[ "$got" != "${DAPR_VERSION#v}" ]]; then
  echo "build-dapr: daprd --version prints \"$got\", want ${DAPR_VERSION#v}" >&2
  exit 1
fi
echo "$DAPR_VERSION" >"$STAMP"
echo "built daprd, placement and scheduler $DAPR_VERSION into $BIN in $(( $(date +%s) - start ))s"
