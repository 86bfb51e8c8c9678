package backoff_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/herd-go/herd/backoff"
)

// A supervisor's retry loop: wait longer after each failure (with jitter,
// up to the cap), start again from the first delay after a success, and
// stop only when ctx ends.
func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	attempts := 0
	register := func() error { // fails twice, as a server coming back does
		if attempts++; attempts < 3 {
			return errors.New("connection refused")
		}
		return nil
	}
	bo := backoff.New(time.Millisecond, 10*time.Millisecond)
	for register() != nil {
		if !bo.Wait(ctx) {
			fmt.Println("gave up: ctx ended")
			return
		}
	}
	bo.Reset()
	fmt.Println("registered after", attempts, "attempts")
	// Output: registered after 3 attempts
}
