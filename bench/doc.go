// Package bench is herd's comparison suite: herd beside bare SDK watchers,
// well-known selector libraries, grpc-go used the SkyWalking way, and raw
// connections, each pair interleaved in one run so the machine's noise hits
// both alike, printing ratios. It is its own module so that the libraries it
// compares against never enter herd's go.mod.
//
// Run it with scripts/bench.sh (which starts the backend servers it needs),
// or one part at a time with go test -run, from this directory. It is not
// part of CI's test command: its figures are recorded in docs/benchmarks.md.
package bench
