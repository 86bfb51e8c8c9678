//go:build tools

// Package tools pins the code generators scripts/genproto.sh builds, the
// mutation tester scripts/mutation.sh runs and the static checker
// scripts/test.sh runs, in a module of their own so they
// never become dependencies of the library.
package tools

import (
	_ "github.com/go-gremlins/gremlins/cmd/gremlins"
	_ "google.golang.org/grpc/cmd/protoc-gen-go-grpc"
	_ "google.golang.org/protobuf/cmd/protoc-gen-go"
	_ "honnef.co/go/tools/cmd/staticcheck"
)
