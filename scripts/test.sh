#!/usr/bin/env bash
# herd's one test command: formatting, go vet, and every test with -race,
# against real backend servers. CI runs exactly this (.ci/run).
#
# etcd is the real server embedded in the test binaries (go.etcd.io/etcd/server/v3/embed),
# so it needs no installation.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "go version"
go version

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './tools/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change these files (run gofmt -w):"
  echo "$unformatted"
  exit 1
fi

step "go vet ./..."
go vet ./...

step "go test -race ./..."
go test -race -count=1 -timeout 20m ./...
