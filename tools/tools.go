//go:build tools

// Package tools pins the code generators scripts/genproto.sh builds, in a
// module of their own so they never become dependencies of the library.
package tools

import (
	_ "google.golang.org/grpc/cmd/protoc-gen-go-grpc"
	_ "google.golang.org/protobuf/cmd/protoc-gen-go"
)
