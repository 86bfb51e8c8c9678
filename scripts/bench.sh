#!/usr/bin/env bash
# herd's comparison suite (issue 14): herd beside bare SDK watchers, selector
# libraries, grpc-go used the SkyWalking way and raw connections, each pair
# interleaved in one run, printing Markdown tables with ratios. Not part of
# CI's test command; docs/benchmarks.md records its output.
#
#   scripts/bench.sh                  every part
#   scripts/bench.sh transport idle   some parts: transport selectors idle
#                                     scale convergence refresh
#
# Environment: HERD_BENCH_ROUNDS (default 5), HERD_BENCH_JOINS (30),
# HERD_BENCH_SCALE_NODES (200), HERD_BENCH_TRANSPORT_MESSAGES (2000000).
# convergence starts ZooKeeper, Consul and the Nacos server as the test
# command does (etcd is embedded); it takes the longest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/backends.sh
trap stop_backends EXIT

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(transport selectors idle refresh scale convergence)

tests=()
for p in "${parts[@]}"; do
  case "$p" in
    transport) tests+=(TestTransport) ;;
    selectors) tests+=(TestSelectors) ;;
    idle) tests+=(TestIdlePeers) ;;
    scale) tests+=(TestScale) ;;
    convergence)
      tests+=(TestConvergence)
      [ -n "${HERD_TEST_ZK_ADDR:-}" ] || start_zookeeper
      [ -n "${HERD_TEST_CONSUL_ADDR:-}" ] || start_consul
      if [ -z "${HERD_TEST_NACOS_ADDR:-}" ]; then ensure_nacos_server; start_nacos_server; fi
      ;;
    refresh)
      printf '\n### Manager refresh, 1,000 nodes (go test ./remote -bench ManagerRefresh1000)\n\n'
      go test ./remote -run '^$' -bench 'ManagerRefresh1000' -benchmem -count "${HERD_BENCH_ROUNDS:-5}" | grep -E '^Benchmark'
      ;;
    *) echo "bench.sh: unknown part $p (transport selectors idle refresh scale convergence)" >&2; exit 2 ;;
  esac
done

if [ ${#tests[@]} -gt 0 ]; then
  pattern="^($(IFS='|'; echo "${tests[*]}"))\$"
  (cd bench && go test -count=1 -timeout 60m -v -run "$pattern" .) | grep -vE '^(=== RUN|--- PASS|PASS$|ok )'
fi
