package remote

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/runtime/protoiface"

	"github.com/herd-go/herd/remote/internal/remotepb"
)

// The wire: a frame is a remotepb.Batch's encoding, a run of field 1
// (messages), each a remotepb.Message: field 1 the worker name, field 2
// the data. The client appends each message's encoding to the frame being
// filled; the server receives the frame into an incomingFrame (one copy of
// the whole frame) and eachMessage reads the messages in place. A message
// costs an append on the way out and no allocation on the way in: its
// handler's data is a slice of the frame's copy.

const (
	batchMessagesField = 1
	messageWorkerField = 1
	messageDataField   = 2
)

// appendMessage appends one Batch.messages entry for worker and data.
func appendMessage(b []byte, worker string, data []byte) []byte {
	size := 0
	if worker != "" {
		size += 1 + protowire.SizeBytes(len(worker))
	}
	if len(data) > 0 {
		size += 1 + protowire.SizeBytes(len(data))
	}
	b = protowire.AppendTag(b, batchMessagesField, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	if worker != "" {
		b = protowire.AppendTag(b, messageWorkerField, protowire.BytesType)
		b = protowire.AppendString(b, worker)
	}
	if len(data) > 0 {
		b = protowire.AppendTag(b, messageDataField, protowire.BytesType)
		b = protowire.AppendBytes(b, data)
	}
	return b
}

var errMalformed = errors.New("remote: malformed message")

// checkWorker refuses a worker name the wire cannot carry: Message.worker
// is a protobuf string, which must be valid UTF-8.
func checkWorker(worker string) error {
	if !utf8.ValidString(worker) {
		return fmt.Errorf("remote: worker name %q is not valid UTF-8, which the wire (a protobuf string) requires", worker)
	}
	return nil
}

// nextField splits the first field off b: its number, its wire type, its
// value when it is a bytes field, and what follows it.
func nextField(b []byte) (num protowire.Number, typ protowire.Type, value, rest []byte, err error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, nil, nil, fmt.Errorf("%w: %w", errMalformed, protowire.ParseError(n))
	}
	b = b[n:]
	if typ == protowire.BytesType {
		value, n = protowire.ConsumeBytes(b)
	} else {
		n = protowire.ConsumeFieldValue(num, typ, b)
	}
	if n < 0 {
		return 0, 0, nil, nil, fmt.Errorf("%w: field %d: %w", errMalformed, num, protowire.ParseError(n))
	}
	return num, typ, value, b[n:], nil
}

// parseMessage reads one Message. Worker and data are slices of b. As in
// protobuf, fields it does not know are skipped, so a newer peer's
// additions do not break an older one, and the last value of a field
// repeated by mistake wins.
func parseMessage(b []byte) (worker, data []byte, err error) {
	for len(b) > 0 {
		num, typ, value, rest, err := nextField(b)
		if err != nil {
			return nil, nil, err
		}
		b = rest
		if typ != protowire.BytesType {
			continue
		}
		switch num {
		case messageWorkerField:
			worker = value
		case messageDataField:
			data = value
		}
	}
	return worker, data, nil
}

// eachMessage calls fn for each message of a Batch's encoding, in order,
// with worker and data sliced from frame; data's capacity ends where the
// message does, so appending to it never overwrites the next one. Fields
// other than Batch.messages are skipped. At the first malformed field it
// stops and returns the error, after the messages before it.
func eachMessage(frame []byte, fn func(worker, data []byte)) error {
	for len(frame) > 0 {
		num, typ, m, rest, err := nextField(frame)
		if err != nil {
			return err
		}
		frame = rest
		if num != batchMessagesField || typ != protowire.BytesType {
			continue
		}
		worker, data, err := parseMessage(m)
		if err != nil {
			return err
		}
		fn(worker, data[:len(data):len(data)])
	}
	return nil
}

// incomingFrame is what the server receives a frame into: a proto.Message
// whose unmarshalling keeps the frame's encoding as it is, in a buffer of
// its own (buf), for eachMessage to read in place. Through the generated
// remotepb.Frame (no fields: all of it unknown fields) protobuf re-appends
// the frame field by field, which measured slower than its copy of each
// message did before. One copy per frame is the least gRPC allows: the
// buffer it unmarshals from goes back to its pool.
type incomingFrame struct {
	buf     []byte
	reflect incomingFrameReflect
	methods protoiface.Methods
}

func newIncomingFrame() *incomingFrame {
	f := &incomingFrame{}
	f.reflect = incomingFrameReflect{Message: (&remotepb.Frame{}).ProtoReflect(), methods: &f.methods}
	f.methods = protoiface.Methods{Unmarshal: f.unmarshal}
	return f
}

// ProtoReflect makes incomingFrame a proto.Message whose fast-path
// methods are its own.
func (f *incomingFrame) ProtoReflect() protoreflect.Message { return &f.reflect }

func (f *incomingFrame) unmarshal(in protoiface.UnmarshalInput) (protoiface.UnmarshalOutput, error) {
	f.buf = append([]byte(nil), in.Buf...) // a new buffer each frame: handlers own slices of it
	return protoiface.UnmarshalOutput{Flags: protoiface.UnmarshalInitialized}, nil
}

// incomingFrameReflect is an empty remotepb.Frame's reflection (it answers
// every question but how to unmarshal) with incomingFrame's methods.
type incomingFrameReflect struct {
	protoreflect.Message
	methods *protoiface.Methods
}

func (r *incomingFrameReflect) ProtoMethods() *protoiface.Methods { return r.methods }
