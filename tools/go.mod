module github.com/herd-go/herd/tools

go 1.26

require (
	google.golang.org/grpc/cmd/protoc-gen-go-grpc v1.6.0
	google.golang.org/protobuf v1.36.11
)
