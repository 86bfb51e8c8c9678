// Package remote moves work between herd nodes, after Apache SkyWalking's
// remote module.
//
//   - Server receives messages from peers and hands each to the Handler
//     registered for its worker name. Mount it on your own *grpc.Server.
//   - PeerClient sends to one peer over one long-lived gRPC client stream,
//     with a bounded queue, batching, an explicit policy when the queue is
//     full, and reconnection with backoff. SelfClient delivers in-process.
//   - Manager (SkyWalking's RemoteClientManager) turns the coordinator's
//     membership into an immutable, sorted Snapshot of clients, pushed by the
//     coordinator's watch and checked by a periodic query.
//   - Sender (SkyWalking's RemoteSenderService) sends one message to the peer
//     a selector picks from the current snapshot.
package remote
