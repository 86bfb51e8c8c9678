package remote

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
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

// eachMessage reads a frame's messages in order, skips batch fields it
// does not know, hands out data that cannot grow into its neighbour, and
// stops at the first malformed field after the messages before it.
func TestEachMessage(t *testing.T) {
	newer := protopack.Message{ // fields a newer peer might add to Batch
		protopack.Tag{Number: 7, Type: protopack.VarintType}, protopack.Varint(42),
		protopack.Tag{Number: 2, Type: protopack.BytesType}, protopack.Bytes("not a message"),
		protopack.Tag{Number: 1, Type: protopack.VarintType}, protopack.Varint(1), // field 1, not bytes
	}.Marshal()
	frame := append(appendMessage(nil, "a", []byte("one")), newer...)
	frame = appendMessage(frame, "b", []byte("two"))
	var got []string
	var datas [][]byte
	err := eachMessage(frame, func(worker, data []byte) {
		got = append(got, string(worker)+"="+string(data))
		datas = append(datas, data)
	})
	if err != nil || strings.Join(got, ",") != "a=one,b=two" {
		t.Fatalf("eachMessage read %q, %v; want a=one,b=two", got, err)
	}
	_ = append(datas[0], "XXXXXXXX"...)
	if string(datas[1]) != "two" || !bytes.Contains(frame, []byte("two")) || cap(datas[0]) != len(datas[0]) {
		t.Fatalf("one message's data can grow over what follows it in the frame: next %q, cap %d", datas[1], cap(datas[0]))
	}

	good := appendMessage(nil, "w", []byte("ok"))
	for name, bad := range map[string][]byte{
		"bad tag":              {0x80},
		"truncated message":    {0x0a, 0x05, 'x'},
		"truncated other":      {0x12, 0x05, 'x'},
		"malformed message":    protopack.Message{protopack.Tag{Number: 1, Type: protopack.BytesType}, protopack.Bytes([]byte{0x0a, 0x05, 'x'})}.Marshal(),
		"truncated varint":     {0x38, 0x80},
		"field 0 in the batch": {0x00, 0x01},
	} {
		n := 0
		err := eachMessage(append(append([]byte(nil), good...), bad...), func(_, _ []byte) { n++ })
		if !errors.Is(err, errMalformed) || n != 1 {
			t.Errorf("%s: err = %v after %d messages, want errMalformed after 1", name, err, n)
		}
	}
}

// The server receives a frame into an incomingFrame through gRPC's own
// codec: one copy of the frame, whatever its number of messages, which the
// handlers may keep after gRPC reuses its buffer.
func TestIncomingFrameIsOneCopy(t *testing.T) {
	var frame []byte
	for range 256 {
		frame = appendMessage(frame, "w", make([]byte, 64))
	}
	codec := encoding.GetCodecV2(grpcproto.Name)
	in := newIncomingFrame()
	wire := append([]byte(nil), frame...)
	if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, in); err != nil {
		t.Fatal(err)
	}
	clear(wire)
	if !bytes.Equal(in.buf, frame) {
		t.Fatal("the received frame is not the bytes sent, or shares gRPC's buffer")
	}
	received := mem.BufferSlice{mem.SliceBuffer(frame)}
	allocs := testing.AllocsPerRun(100, func() {
		if err := codec.Unmarshal(received, in); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 1 {
		t.Fatalf("receiving a frame of 256 messages made %.0f allocations, want the one copy", allocs)
	}
}
