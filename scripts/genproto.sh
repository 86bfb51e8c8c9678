#!/usr/bin/env bash
# Regenerates remote/internal/remotepb from remote.proto.
# protoc comes from Debian's protobuf-compiler (installed here if missing);
# the Go plugins are built at the versions pinned in tools/go.mod.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v protoc >/dev/null; then
  echo "genproto: installing protoc (Debian package protobuf-compiler)" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq protobuf-compiler >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq protobuf-compiler >/dev/null; fi
fi

bin="${XDG_CACHE_HOME:-$HOME/.cache}/herd/bin"
mkdir -p "$bin"
(cd tools && GOBIN="$bin" go install google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc)

PATH="$bin:$PATH" protoc \
  --proto_path=remote/internal/remotepb \
  --go_out=. --go_opt=module=github.com/herd-go/herd \
  --go-grpc_out=. --go-grpc_opt=module=github.com/herd-go/herd \
  remote/internal/remotepb/remote.proto
echo "genproto: regenerated remote/internal/remotepb with $(protoc --version)"
