#!/usr/bin/env bash
# Installs (or builds) and starts the real backend servers the tests use, on a
# machine with no Docker. Sourced by scripts/test.sh; usable on its own:
#
#   source scripts/backends.sh; start_consul; start_zookeeper; ...; stop_backends
#
# Builds are cached outside the repository in $HERD_CACHE (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/herd) so repeat runs are fast; nothing
# depends on the cache being there. Servers run in their own session (setsid),
# are recorded by pid, and are stopped by pid — never by name.

HERD_CACHE="${HERD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/herd}"
HERD_RUN="${HERD_RUN:-$(mktemp -d "${TMPDIR:-/tmp}/herd-backends.XXXXXX")}"
CONSUL_VERSION=1.20.1
mkdir -p "$HERD_CACHE/bin"
HERD_PIDS=()

log() { printf '[backends] %s\n' "$*" >&2; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_tcp HOST PORT SECONDS: bash's /dev/tcp, since nc is not installed.
wait_tcp() {
  local deadline=$((SECONDS + $3))
  while (( SECONDS < deadline )); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  return 1
}

# ensure_consul: the agent built from its Go module (Consul is not in Debian).
# v1.20.1 is the newest tag whose submodules the Go module proxy serves.
ensure_consul() {
  CONSUL_BIN="$HERD_CACHE/bin/consul-$CONSUL_VERSION"
  [ -x "$CONSUL_BIN" ] && return 0
  log "building consul $CONSUL_VERSION from the Go module proxy (about 5 minutes on 2 cores; cached in $HERD_CACHE)"
  local src="$HERD_CACHE/src/consul-$CONSUL_VERSION"
  mkdir -p "$src"
  (
    cd "$src"
    [ -f go.mod ] || printf 'module herdconsul\n\ngo 1.26\n' > go.mod
    GOFLAGS=-mod=mod go get "github.com/hashicorp/consul@v$CONSUL_VERSION" >/dev/null
    GOFLAGS=-mod=mod go build -o "$CONSUL_BIN.tmp" github.com/hashicorp/consul
  ) && mv "$CONSUL_BIN.tmp" "$CONSUL_BIN"
}

# ensure_zookeeper: Apache ZooKeeper from Debian's package (Java is on the machine).
ensure_zookeeper() {
  if ! ls /usr/share/java/zookeeper*.jar >/dev/null 2>&1; then
    log "installing Debian's zookeeper package"
    local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq zookeeper >/dev/null
  fi
}
