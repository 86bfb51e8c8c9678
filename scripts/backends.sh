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
HERD_RUN="${HERD_RUN:-}" # made on first start, removed by stop_backends
CONSUL_VERSION=1.20.1
ETCD_VERSION=3.6.5
KUBE_VERSION=1.37.2
RNACOS_VERSION=0.8.8
NACOS_VERSION=2.5.1
# The Alibaba Nacos server's source (no package registry ships the server);
# ../shared/sources/README.md has its origin and checksum.
NACOS_SRC="${NACOS_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/shared/sources/nacos-$NACOS_VERSION-src.tar.gz}"
NACOS_SHA256=3579ae2c12b7103cec4477b83d0a9f9ee1eab3e1ac6dd24beaecaa71be08a1a8
mkdir -p "$HERD_CACHE/bin"
HERD_PIDS=()

log() { printf '[backends] %s\n' "$*" >&2; }

# run_dir NAME: sets $dir to a fresh folder for NAME under $HERD_RUN, which it
# creates on first use. Not a $(…) call: HERD_RUN must be set in this shell.
run_dir() {
  [ -n "$HERD_RUN" ] || HERD_RUN=$(mktemp -d "${TMPDIR:-/tmp}/herd-backends.XXXXXX")
  dir="$HERD_RUN/$1"
  mkdir -p "$dir"
}

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

# wait_http URL PATTERN SECONDS WHAT LOG: waits until URL answers with a body
# matching PATTERN; else shows the end of LOG and fails.
wait_http() {
  local deadline=$((SECONDS + $3))
  until curl -sf "$1" 2>/dev/null | grep -q "$2"; do
    if (( SECONDS > deadline )); then log "$4 was not ready in $3 s:"; tail -20 "$5" >&2; return 1; fi
    sleep 0.3
  done
}

# go_build_cached OUT MODULE@VERSION PACKAGE: builds PACKAGE from the Go module
# proxy in a wrapper module under $HERD_CACHE/src, and installs it as OUT.
go_build_cached() {
  local out=$1 mod=$2 pkg=$3
  local src="$HERD_CACHE/src/$(basename "$out")"
  mkdir -p "$src"
  (
    cd "$src"
    [ -f go.mod ] || printf 'module herdtool\n\ngo 1.26\n' > go.mod
    GOFLAGS=-mod=mod go get "$mod" >get.log 2>&1 || { cat get.log >&2; exit 1; }
    GOFLAGS=-mod=mod go build -o "$out.tmp" "$pkg"
  ) && mv "$out.tmp" "$out"
}

# ensure_consul: the agent built from its Go module (Consul is not in Debian).
# v1.20.1 is the newest tag whose submodules the Go module proxy serves.
ensure_consul() {
  CONSUL_BIN="$HERD_CACHE/bin/consul-$CONSUL_VERSION"
  [ -x "$CONSUL_BIN" ] && return 0
  log "building consul $CONSUL_VERSION from the Go module proxy (about 5 minutes on 2 cores; cached in $HERD_CACHE)"
  go_build_cached "$CONSUL_BIN" "github.com/hashicorp/consul@v$CONSUL_VERSION" github.com/hashicorp/consul
}

# apt_install: Debian packages, as root or through sudo.
apt_install() {
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# ensure_zookeeper: Apache ZooKeeper from Debian's package (Java is on the machine).
ensure_zookeeper() {
  if ! ls /usr/share/java/zookeeper*.jar >/dev/null 2>&1; then
    log "installing Debian's zookeeper package"
    apt_install zookeeper
  fi
}

# ensure_chromium: Debian's Chromium, for the status page's browser test.
ensure_chromium() {
  CHROMIUM_BIN=$(command -v chromium || true)
  if [ -z "$CHROMIUM_BIN" ]; then
    log "installing Debian's chromium package (the status page's browser test)"
    apt_install chromium
    CHROMIUM_BIN=$(command -v chromium)
  fi
}

# ensure_etcd_bin: an etcd server binary (kube-apiserver needs one out of process).
ensure_etcd_bin() {
  ETCD_BIN="$HERD_CACHE/bin/etcd-$ETCD_VERSION"
  [ -x "$ETCD_BIN" ] && return 0
  log "building etcd $ETCD_VERSION from the Go module proxy (about 30 s)"
  go_build_cached "$ETCD_BIN" "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" go.etcd.io/etcd/server/v3
}

# ensure_kube_apiserver: kube-apiserver built from k8s.io/kubernetes. Its
# staging modules are replaced by their published versions, read from that
# release's own go.mod.
ensure_kube_apiserver() {
  KUBE_APISERVER_BIN="$HERD_CACHE/bin/kube-apiserver-$KUBE_VERSION"
  [ -x "$KUBE_APISERVER_BIN" ] && return 0
  log "building kube-apiserver $KUBE_VERSION from the Go module proxy (about 4 minutes on 2 cores)"
  local src="$HERD_CACHE/src/kube-$KUBE_VERSION"
  mkdir -p "$src"
  (
    cd "$src"
    local gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    {
      printf 'module herdkube\n\ngo 1.26\n\nrequire k8s.io/kubernetes v%s\n\n' "$KUBE_VERSION"
      sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#replace \1 => \1 v0.'"${KUBE_VERSION#1.}"'#p' "$gomod"
    } > go.mod
    GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
    GOFLAGS=-mod=mod go build -o "$KUBE_APISERVER_BIN.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  ) && mv "$KUBE_APISERVER_BIN.tmp" "$KUBE_APISERVER_BIN"
}

# ensure_rnacos: r-nacos, a Nacos-compatible server (Nacos 2.x HTTP + gRPC
# protocols), built from the Rust crate registry. The Alibaba Nacos server itself is not on
# Maven Central (only its client is), so it cannot be fetched here.
ensure_rnacos() {
  RNACOS_BIN="$HERD_CACHE/rnacos-$RNACOS_VERSION/bin/rnacos"
  [ -x "$RNACOS_BIN" ] && return 0
  command -v cargo >/dev/null || { log "cargo is needed to build rnacos (Rust, from rustup)"; return 1; }
  log "building rnacos $RNACOS_VERSION from the Rust crate registry (about 10 minutes on 2 cores; cached in $HERD_CACHE)"
  cargo install rnacos --version "$RNACOS_VERSION" --locked --root "$HERD_CACHE/rnacos-$RNACOS_VERSION" >"$HERD_CACHE/rnacos-build.log" 2>&1 ||
    { tail -30 "$HERD_CACHE/rnacos-build.log" >&2; return 1; }
}

# ensure_nacos_server: the Alibaba Nacos server, built with Maven from its
# source archive (every plugin and dependency from Maven Central; about 3.5
# minutes on 2 cores). Sets NACOS_DIST to the distribution folder, which
# holds target/nacos-server.jar and conf/.
ensure_nacos_server() {
  NACOS_DIST="$HERD_CACHE/nacos-server-$NACOS_VERSION"
  [ -f "$NACOS_DIST/target/nacos-server.jar" ] && return 0
  [ -f "$NACOS_SRC" ] || { log "the Nacos server source is missing: $NACOS_SRC"; return 1; }
  echo "$NACOS_SHA256  $NACOS_SRC" | sha256sum -c --quiet - || { log "$NACOS_SRC: checksum mismatch"; return 1; }
  command -v mvn >/dev/null || { log "Maven (mvn) is needed to build the Nacos server"; return 1; }
  log "building the Nacos server $NACOS_VERSION with Maven (about 3.5 minutes on 2 cores; cached in $HERD_CACHE)"
  local src="$HERD_CACHE/src/nacos-$NACOS_VERSION"
  rm -rf "$src" && mkdir -p "$src" && tar -xzf "$NACOS_SRC" -C "$src" || return 1
  (
    cd "$src"
    mvn -B -q -Prelease-nacos -Dmaven.test.skip=true -Drat.skip=true -Dcheckstyle.skip=true \
      -Dpmd.skip=true -Dmaven.javadoc.skip=true -Dmaven.source.skip=true -Djacoco.skip=true \
      -Denforcer.skip=true -Dfindbugs.skip=true -pl distribution -am install -T1 >"$HERD_CACHE/nacos-build.log" 2>&1
  ) || { tail -40 "$HERD_CACHE/nacos-build.log" >&2; return 1; }
  rm -rf "$NACOS_DIST.tmp" && cp -r "$src/distribution/target/nacos-server-$NACOS_VERSION/nacos" "$NACOS_DIST.tmp" &&
    mv "$NACOS_DIST.tmp" "$NACOS_DIST" && rm -rf "$src"
}

# start_nacos_server: the Alibaba Nacos server, standalone on loopback, on a
# free HTTP port P (gRPC on P+1000 and P+1001, JRaft on P-1000, all free);
# exports HERD_TEST_NACOS_ADDR and HERD_NACOS_SERVER (the distribution, for
# the tests that start servers of their own). Ready in 15-25 s.
start_nacos_server() {
  ensure_nacos_server || return 1
  local http o ok
  while :; do
    http=$(free_port); ok=1
    for o in -1000 1000 1001; do
      if (( http + o < 1024 || http + o > 65535 )) || (exec 3<>"/dev/tcp/127.0.0.1/$((http + o))") 2>/dev/null; then ok=0; fi
    done
    (( ok )) && break
  done
  local dir; run_dir nacos-server; mkdir -p "$dir/logs"; cp -r "$NACOS_DIST/conf" "$dir/conf"
  # Started from its run directory: the server writes derby.log and an
  # access log into its working directory.
  (cd "$dir" && exec setsid java -Xms256m -Xmx512m -Xmn128m -Dnacos.standalone=true -Dnacos.home="$dir" \
    -Dnacos.inetutils.ip-address=127.0.0.1 -Dserver.address=127.0.0.1 \
    -jar "$NACOS_DIST/target/nacos-server.jar" --spring.config.additional-location=file:"$dir"/conf/ \
    --logging.config="$dir"/conf/nacos-logback.xml --server.port="$http" >"$dir/nacos.log" 2>&1 </dev/null) &
  HERD_PIDS+=($!)
  wait_http "http://127.0.0.1:$http/nacos/v1/ns/operator/metrics" '"UP"' 120 "the Nacos server" "$dir/nacos.log" || return 1
  export HERD_TEST_NACOS_ADDR="127.0.0.1:$http" HERD_NACOS_SERVER="$NACOS_DIST"
  log "Nacos server $NACOS_VERSION at $HERD_TEST_NACOS_ADDR (pid ${HERD_PIDS[-1]})"
}

# start_rnacos: rnacos on a free HTTP port P with gRPC on P+1000 (Nacos's
# offset, which nacos-sdk-go assumes); exports HERD_TEST_RNACOS_ADDR.
start_rnacos() {
  ensure_rnacos || return 1
  local http
  while :; do
    http=$(free_port)
    (( http + 1000 < 65536 )) && ! (exec 3<>"/dev/tcp/127.0.0.1/$((http + 1000))") 2>/dev/null && break
  done
  local dir; run_dir nacos
  RNACOS_HTTP_PORT=$http RNACOS_GRPC_PORT=$((http + 1000)) RNACOS_HTTP_CONSOLE_PORT=$(free_port) \
    RNACOS_DATA_DIR="$dir/data" setsid "$RNACOS_BIN" >"$dir/rnacos.log" 2>&1 </dev/null &
  HERD_PIDS+=($!)
  if ! wait_tcp 127.0.0.1 $((http + 1000)) 60; then log "rnacos did not listen in 60s:"; tail -20 "$dir/rnacos.log" >&2; return 1; fi
  export HERD_TEST_RNACOS_ADDR="127.0.0.1:$http" HERD_RNACOS_BIN="$RNACOS_BIN"
  log "rnacos $RNACOS_VERSION (Nacos-compatible) at $HERD_TEST_RNACOS_ADDR (pid ${HERD_PIDS[-1]})"
}

# start_consul: a dev-mode agent on free loopback ports; exports HERD_TEST_CONSUL_ADDR.
start_consul() {
  ensure_consul || return 1
  local http; http=$(free_port)
  local dir; run_dir consul
  setsid "$CONSUL_BIN" agent -dev -node=herd-ci -client=127.0.0.1 -bind=127.0.0.1 \
    -http-port="$http" -dns-port=-1 -grpc-port=-1 -grpc-tls-port=-1 \
    -serf-lan-port="$(free_port)" -serf-wan-port="$(free_port)" -server-port="$(free_port)" \
    -log-level=warn >"$dir/consul.log" 2>&1 </dev/null &
  HERD_PIDS+=($!)
  wait_http "http://127.0.0.1:$http/v1/status/leader" '"127' 60 "consul (electing a leader)" "$dir/consul.log" || return 1
  export HERD_TEST_CONSUL_ADDR="127.0.0.1:$http" HERD_CONSUL_BIN="$CONSUL_BIN"
  log "consul $CONSUL_VERSION agent at $HERD_TEST_CONSUL_ADDR (pid ${HERD_PIDS[-1]})"
}

# start_zookeeper: a standalone server on a free loopback port; exports HERD_TEST_ZK_ADDR.
start_zookeeper() {
  ensure_zookeeper || return 1
  local port; port=$(free_port)
  local dir; run_dir zookeeper; mkdir -p "$dir/data"
  cat >"$dir/zoo.cfg" <<CFG
tickTime=500
initLimit=10
syncLimit=5
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
CFG
  setsid java -Xmx256m -cp "/usr/share/java/*" org.apache.zookeeper.server.ZooKeeperServerMain "$dir/zoo.cfg" \
    >"$dir/zookeeper.log" 2>&1 </dev/null &
  HERD_PIDS+=($!)
  if ! wait_tcp 127.0.0.1 "$port" 60; then log "zookeeper did not listen in 60s:"; tail -20 "$dir/zookeeper.log" >&2; return 1; fi
  export HERD_TEST_ZK_ADDR="127.0.0.1:$port" HERD_ZK_CLASSPATH="/usr/share/java/*"
  log "zookeeper at $HERD_TEST_ZK_ADDR (pid ${HERD_PIDS[-1]})"
}

# start_test_backends: everything the tests need. Starts Consul, ZooKeeper,
# the Nacos server and rnacos unless HERD_TEST_*_ADDR already names one
# (compose.yaml), and
# builds the binaries the recovery and Kubernetes tests run themselves;
# exports the HERD_* variables the tests read.
start_test_backends() {
  [ -n "${HERD_TEST_CONSUL_ADDR:-}" ] || start_consul
  [ -n "${HERD_TEST_ZK_ADDR:-}" ] || start_zookeeper
  [ -n "${HERD_TEST_NACOS_ADDR:-}" ] || start_nacos_server
  [ -n "${HERD_TEST_RNACOS_ADDR:-}" ] || start_rnacos
  ensure_consul
  ensure_zookeeper
  ensure_etcd_bin
  ensure_kube_apiserver
  ensure_rnacos
  ensure_nacos_server
  ensure_chromium
  export HERD_CHROMIUM="${HERD_CHROMIUM:-$CHROMIUM_BIN}"
  export HERD_NACOS_SERVER="${HERD_NACOS_SERVER:-$NACOS_DIST}"
  export HERD_CONSUL_BIN="${HERD_CONSUL_BIN:-$CONSUL_BIN}" HERD_ZK_CLASSPATH="${HERD_ZK_CLASSPATH:-/usr/share/java/*}"
  export HERD_ETCD_BIN="$ETCD_BIN" HERD_KUBE_APISERVER_BIN="$KUBE_APISERVER_BIN" HERD_RNACOS_BIN="$RNACOS_BIN"
}

# stop_backends: stops, by the pids recorded above, everything this script started.
stop_backends() {
  local pid
  for pid in "${HERD_PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${HERD_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  done
  HERD_PIDS=()
  [ -z "$HERD_RUN" ] || rm -rf "$HERD_RUN"
}
