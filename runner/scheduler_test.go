package runner

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSchedulerGrantsByPriorityWithBackfill(t *testing.T) {
	s := newScheduler(1, 4, 1<<30)
	ctx := t.Context()
	hold, err := s.acquire(ctx, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 3)
	start := func(prio int) {
		go func() {
			rel, err := s.acquire(ctx, 0, 0, prio)
			if err != nil {
				t.Error(err)
				return
			}
			got <- prio
			rel()
		}()
	}
	for _, p := range []int{1, 5, 3} {
		start(p)
		waitQueued(t, s, p)
	}
	hold()
	var order []int
	for range 3 {
		order = append(order, <-got)
	}
	if diff := cmp.Diff([]int{5, 3, 1}, order); diff != "" {
		t.Errorf("grant order (-want +got):\n%s", diff)
	}
}

func waitQueued(t *testing.T, s *scheduler, prio int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		for _, r := range s.queue {
			if r.priority == prio {
				s.mu.Unlock()
				return
			}
		}
		s.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("request %d never queued", prio)
}

func TestSchedulerSmallTasksOvertakeUntilStarvation(t *testing.T) {
	s := newScheduler(4, 4, 1<<30)
	s.starveAfter = time.Hour
	ctx := t.Context()
	a, _ := s.acquire(ctx, 3, 0, 0) // 1 CPU left
	bigDone := make(chan struct{})
	go func() {
		rel, err := s.acquire(ctx, 4, 0, 10) // waits for all 4 CPUs
		if err == nil {
			close(bigDone)
			rel()
		}
	}()
	waitQueued(t, s, 10)
	// A small task fits in the remaining CPU and overtakes.
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	small, err := s.acquire(c, 1, 0, 1)
	if err != nil {
		t.Fatalf("small task did not overtake: %v", err)
	}
	small()
	// Once the big one has waited past starveAfter, nothing overtakes it.
	s.mu.Lock()
	s.starveAfter = 0
	s.mu.Unlock()
	c2, cancel2 := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel2()
	if rel, err := s.acquire(c2, 1, 0, 1); err == nil {
		rel()
		t.Error("a small task overtook a starved big one")
	}
	a()
	select {
	case <-bigDone:
	case <-time.After(2 * time.Second):
		t.Fatal("big task never ran")
	}
}
