package remote

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protopack"

	"github.com/herd-go/herd/remote/internal/remotepb"
)

// A frame the client builds is a remotepb.Batch to protobuf, and each
// Message protobuf encodes reads back the same: the wire stays the
// documented one, so peers built from the .proto file interoperate.
func FuzzFrameIsABatch(f *testing.F) {
	f.Add("w", []byte("data"), "", []byte(nil))
	f.Add("", []byte{}, "x", make([]byte, 300))
	f.Fuzz(func(t *testing.T, w1 string, d1 []byte, w2 string, d2 []byte) {
		if checkWorker(w1) != nil || checkWorker(w2) != nil {
			t.Skip("Send and Handle refuse worker names that are not UTF-8")
		}
		frame := appendMessage(appendMessage(nil, w1, d1), w2, d2)
		var b remotepb.Batch
		if err := proto.Unmarshal(frame, &b); err != nil {
			t.Fatalf("protobuf cannot read the frame: %v", err)
		}
		want := []*remotepb.Message{{Worker: w1, Data: d1}, {Worker: w2, Data: d2}}
		if len(b.Messages) != 2 {
			t.Fatalf("%d messages, want 2", len(b.Messages))
		}
		for i, m := range b.Messages {
			if m.Worker != want[i].Worker || !bytes.Equal(m.Data, want[i].Data) {
				t.Fatalf("message %d: got %q %x, want %q %x", i, m.Worker, m.Data, want[i].Worker, want[i].Data)
			}
			enc, err := proto.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			worker, data, err := parseMessage(enc)
			if err != nil || string(worker) != m.Worker || !bytes.Equal(data, m.Data) {
				t.Fatalf("parseMessage(protobuf's encoding of message %d) = %q, %x, %v", i, worker, data, err)
			}
		}
	})
}

// parseMessage skips fields it does not know, keeps the last of a repeated
// field, and refuses what is not a Message without panicking.
func TestParseMessage(t *testing.T) {
	newer := protopack.Message{
		protopack.Tag{Number: 1, Type: protopack.BytesType}, protopack.String("old"),
		protopack.Tag{Number: 7, Type: protopack.VarintType}, protopack.Varint(42), // added by a newer peer
		protopack.Tag{Number: 2, Type: protopack.BytesType}, protopack.Bytes("data"),
		protopack.Tag{Number: 1, Type: protopack.BytesType}, protopack.String("w"),
	}.Marshal()
	worker, data, err := parseMessage(newer)
	if err != nil || string(worker) != "w" || string(data) != "data" {
		t.Fatalf("parseMessage = %q, %q, %v", worker, data, err)
	}
	for name, bad := range map[string][]byte{
		"truncated length": {0x0a, 0x05, 'x'},
		"bad tag":          {0x80},
		"field 0":          {0x00, 0x01},
		"truncated varint": {0x38, 0x80},
	} {
		if _, _, err := parseMessage(bad); !errors.Is(err, errMalformed) {
			t.Errorf("%s: err = %v, want errMalformed", name, err)
		}
	}
}
