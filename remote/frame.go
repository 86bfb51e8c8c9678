package remote

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// The wire: a frame is a remotepb.Batch's encoding, a run of field 1
// (messages), each a remotepb.Message: field 1 the worker name, field 2
// the data. The client appends each message's encoding to the frame being
// filled; the server gets each message's encoding as one bytes value of
// remotepb.Frame and reads it with parseMessage. A message costs an append
// on the way out and one allocation on the way in (the copy its handler
// owns), not a struct, a reflection walk and three allocations.

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

// parseMessage reads one Message. Worker and data are slices of b. As in
// protobuf, fields it does not know are skipped, so a newer peer's
// additions do not break an older one, and the last value of a field
// repeated by mistake wins.
func parseMessage(b []byte) (worker, data []byte, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, nil, fmt.Errorf("%w: %w", errMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		if (num == messageWorkerField || num == messageDataField) && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, nil, fmt.Errorf("%w: field %d: %w", errMalformed, num, protowire.ParseError(n))
			}
			b = b[n:]
			if num == messageWorkerField {
				worker = v
			} else {
				data = v
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, nil, fmt.Errorf("%w: field %d: %w", errMalformed, num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	return worker, data, nil
}
