package cluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/herd-go/herd/cluster"
	"github.com/herd-go/herd/cluster/backend"
)

// hangingRelease is a backend resign whose server never answers: it returns
// only when its context ends, and says when that was.
func hangingRelease(ended chan<- time.Time) func(context.Context) error {
	return func(ctx context.Context) error {
		<-ctx.Done()
		ended <- time.Now()
		return ctx.Err()
	}
}

func TestResignIsBoundedWithoutADeadline(t *testing.T) {
	ended := make(chan time.Time, 1)
	l, _ := backend.NewLeadership("e", 1, hangingRelease(ended))
	began := time.Now()
	err := l.Resign(context.Background())
	took := time.Since(began)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Resign with a backend that never answers: %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if took < cluster.ResignWait || took > cluster.ResignWait+time.Second {
		t.Errorf("Resign returned after %s, want about cluster.ResignWait (%s)", took, cluster.ResignWait)
	}
	if !errors.Is(l.Err(), cluster.ErrResigned) {
		t.Errorf("Err after Resign: %v, want ErrResigned", l.Err())
	}
	// The release goes on trying after Resign returned, and then stops.
	select {
	case at := <-ended:
		if at.Sub(began) < 2*cluster.ResignWait {
			t.Errorf("the release was stopped %s after Resign began, together with the wait; it should go on in the background", at.Sub(began))
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the background release was never stopped")
	}
	if again := l.Resign(context.Background()); again != err {
		t.Errorf("a second Resign returned %v, want the first call's %v", again, err)
	}
}

func TestResignHonoursItsDeadline(t *testing.T) {
	ended := make(chan time.Time, 1)
	l, _ := backend.NewLeadership("e", 1, hangingRelease(ended))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	began := time.Now()
	if err := l.Resign(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Resign: %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if took := time.Since(began); took > cluster.ResignWait {
		t.Errorf("Resign with a 50ms deadline returned after %s", took)
	}
	<-ended
}

func TestResignOfAnEndedLeadershipReturnsAtOnce(t *testing.T) {
	released := make(chan error, 1)
	l, lose := backend.NewLeadership("e", 1, func(ctx context.Context) error {
		released <- ctx.Err()
		<-ctx.Done()
		return ctx.Err()
	})
	lost := errors.New("lease not renewed")
	lose(lost)
	began := time.Now()
	if err := l.Resign(context.Background()); err != nil {
		t.Fatalf("Resign of a lost leadership: %v, want nil", err)
	}
	if took := time.Since(began); took > cluster.ResignWait/2 {
		t.Errorf("Resign of a lost leadership took %s, want at once", took)
	}
	if !errors.Is(l.Err(), lost) {
		t.Errorf("Err after Resign: %v, want the cause it was lost with", l.Err())
	}
	// The backend still hears of it, with a context already ended, so that
	// it frees what is local and waits on no server.
	select {
	case err := <-released:
		if err == nil {
			t.Error("the backend's resign of a lost leadership ran with a live context")
		}
	case <-time.After(5 * time.Second):
		t.Error("the backend's resign never ran")
	}
}

func TestResignReturnsTheBackendsAnswer(t *testing.T) {
	refused := errors.New("refused")
	l, _ := backend.NewLeadership("e", 1, func(context.Context) error { return refused })
	if err := l.Resign(context.Background()); err != refused {
		t.Fatalf("Resign: %v, want the backend's %v", err, refused)
	}
}
