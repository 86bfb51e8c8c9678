package latest

import (
	"context"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSubscriberGetsCurrentThenNewest(t *testing.T) {
	var v Value[int]
	v.Publish(1)
	ctx, cancel := context.WithCancel(context.Background())
	ch := v.Subscribe(ctx)
	if got := <-ch; got != 1 {
		t.Fatalf("first value = %d, want 1", got)
	}
	for i := 2; i <= 100; i++ {
		v.Publish(i) // never blocks though nobody reads
	}
	if got := <-ch; got != 100 {
		t.Fatalf("coalesced value = %d, want 100", got)
	}
	cancel()
	if _, ok := <-ch; ok {
		t.Fatal("channel still open after ctx cancel")
	}
}

func TestCloseClosesSubscribers(t *testing.T) {
	var v Value[string]
	ch := v.Subscribe(context.Background())
	v.Close()
	if _, ok := <-ch; ok {
		t.Fatal("channel open after Close")
	}
	if _, ok := <-v.Subscribe(context.Background()); ok {
		t.Fatal("subscription after Close is open")
	}
	v.Publish("ignored")
	if _, set := v.Load(); set {
		t.Fatal("Publish after Close stored a value")
	}
}
