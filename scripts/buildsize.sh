#!/usr/bin/env bash
# What each backend import costs a program: the quickstart
# (examples/quickstart) built in a fresh module outside the repository, once
# per import line, each from an empty build cache, as a newcomer's first
# build is. Prints the Markdown table the README's "Which import" records.
#
#   scripts/buildsize.sh               every row
#   scripts/buildsize.sh etcd gossip   some rows (none, all, etcd, consul,
#                                      zookeeper, nacos, kubernetes, gossip)
#
# The module cache stays warm: downloads are not counted, only compiling
# and linking. Not part of CI's test command (a cold build of cluster/all
# takes minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

rows=("$@")
[ ${#rows[@]} -gt 0 ] || rows=(none etcd consul zookeeper nacos kubernetes gossip all)

work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

echo "| import | modules | non-standard packages | binary | first build |"
echo "|---|---|---|---|---|"
for row in "${rows[@]}"; do
  dir="$work/$row"
  mkdir -p "$dir"
  case "$row" in
    none) line='' label='`cluster` alone (standalone)' ;;
    all) line='_ "github.com/herd-go/herd/cluster/all"' label='`cluster/all`' ;;
    etcd | consul | zookeeper | nacos | kubernetes | gossip)
      line="_ \"github.com/herd-go/herd/cluster/$row\"" label="\`cluster/$row\`" ;;
    *) echo "unknown row $row: want none, all or a backend name" >&2; exit 2 ;;
  esac
  # The quickstart with its one backend import replaced.
  awk -v line="$line" '/_ "github.com\/herd-go\/herd\/cluster\// { if (line != "") print "\t" line; next } { print }' \
    examples/quickstart/main.go > "$dir/main.go"
  printf 'module example.com/app\n\ngo 1.26.0\n\nrequire github.com/herd-go/herd v0.0.0\n\nreplace github.com/herd-go/herd => %s\n' "$root" > "$dir/go.mod"
  (cd "$dir" && GOFLAGS=-mod=mod GOWORK=off go mod tidy >/dev/null 2>&1)
  mods=$(cd "$dir" && GOWORK=off go list -deps -f '{{with .Module}}{{.Path}}{{end}}' . | sort -u | grep -c .)
  pkgs=$(cd "$dir" && GOWORK=off go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' . | grep -c .)
  start=$(date +%s.%N)
  (cd "$dir" && GOCACHE="$dir/.cache" GOWORK=off go build -o app . )
  took=$(echo "$(date +%s.%N) - $start" | bc)
  size=$(stat -c %s "$dir/app")
  printf '| %s | %d | %d | %.1f MB | %.0f s |\n' "$label" "$mods" "$pkgs" "$(echo "$size / 1000000" | bc -l)" "$took"
  chmod -R u+w "$dir/.cache" && rm -rf "$dir/.cache"
done
