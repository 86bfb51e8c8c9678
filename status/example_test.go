package status_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"

	"google.golang.org/grpc"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/inspect"
	"github.com/herd-go/herd/remote"
	"github.com/herd-go/herd/status"
)

// Handler serves the view in SkyWalking's shape, the whole report as JSON
// and a page for people, from one Inspector.
func ExampleHandler() {
	ctx := context.Background()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := remote.NewServer()
	g := grpc.NewServer()
	srv.Register(g)
	go g.Serve(lis)
	defer g.Stop()
	self := cluster.Node{ID: "node-a", Address: cluster.Address{Host: "127.0.0.1", Port: 11800}}
	coord := cluster.NewStandalone() // or cluster.New(ctx, cfg) on any backend
	defer coord.Close()
	if err := coord.RegisterRemote(ctx, self); err != nil {
		panic(err)
	}
	peers, err := remote.NewManager(coord, self, srv)
	if err != nil {
		panic(err)
	}
	defer peers.Close()
	in, err := inspect.New(inspect.Sources{Manager: peers, Coordinator: coord})
	if err != nil {
		panic(err)
	}
	defer in.Close()

	mux := http.NewServeMux()
	mux.Handle("/status/", status.Handler(in)) // /status/, /status/herd, /status/cluster/nodes
	web := httptest.NewServer(mux)
	defer web.Close()

	resp, err := http.Get(web.URL + "/status/cluster/nodes")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(string(body))
	// Output:
	// {
	//   "nodes": [
	//     {
	//       "host": "127.0.0.1",
	//       "port": 11800,
	//       "self": true
	//     }
	//   ]
	// }
}
