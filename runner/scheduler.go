package runner

import (
	"context"
	"sort"
	"sync"
	"time"
)

// scheduler hands out parallel slots, CPU cores and memory to ready tasks.
// A task that declares no CPU or memory reserves none, only a slot (as in
// Kubernetes). Among waiting tasks the one with the longest remaining path
// goes first; smaller tasks may overtake one that does not fit, until it has
// waited starveAfter, after which it is reserved for.
type scheduler struct {
	mu       sync.Mutex
	slots    int
	cpu      float64
	mem      int64
	usedSlot int
	usedCPU  float64
	usedMem  int64
	queue    []*slotRequest
	seq      int
	// starveAfter bounds how long a large request can be overtaken.
	starveAfter time.Duration
}

type slotRequest struct {
	cpu      float64
	mem      int64
	priority int
	seq      int
	since    time.Time
	granted  chan struct{}
	done     bool
}

func newScheduler(slots int, cpu float64, mem int64) *scheduler {
	if slots < 1 {
		slots = 1
	}
	return &scheduler{slots: slots, cpu: cpu, mem: mem, starveAfter: 10 * time.Second}
}

// acquire blocks until the request fits, and returns the release function.
func (s *scheduler) acquire(ctx context.Context, cpu float64, mem int64, priority int) (func(), error) {
	s.mu.Lock()
	s.seq++
	r := &slotRequest{cpu: cpu, mem: mem, priority: priority, seq: s.seq, since: time.Now(), granted: make(chan struct{})}
	s.queue = append(s.queue, r)
	s.dispatchLocked()
	s.mu.Unlock()
	select {
	case <-r.granted:
		return func() { s.release(r) }, nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.done {
			// Granted just as ctx ended: give it back.
			s.releaseLocked(r)
		} else {
			s.removeLocked(r)
		}
		return nil, context.Cause(ctx)
	}
}

func (s *scheduler) release(r *slotRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(r)
}

func (s *scheduler) releaseLocked(r *slotRequest) {
	s.usedSlot--
	s.usedCPU -= r.cpu
	s.usedMem -= r.mem
	s.dispatchLocked()
}

func (s *scheduler) removeLocked(r *slotRequest) {
	for i, q := range s.queue {
		if q == r {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			break
		}
	}
	s.dispatchLocked()
}

func (s *scheduler) fits(r *slotRequest) bool {
	if s.usedSlot >= s.slots {
		return false
	}
	// A request larger than the machine runs alone rather than never.
	if r.cpu > 0 && s.usedCPU+r.cpu > s.cpu+1e-9 && !(s.usedCPU == 0 && r.cpu > s.cpu) {
		return false
	}
	if r.mem > 0 && s.usedMem+r.mem > s.mem && !(s.usedMem == 0 && r.mem > s.mem) {
		return false
	}
	return true
}

func (s *scheduler) dispatchLocked() {
	sort.SliceStable(s.queue, func(i, j int) bool {
		a, b := s.queue[i], s.queue[j]
		if a.priority != b.priority {
			return a.priority > b.priority
		}
		return a.seq < b.seq
	})
	now := time.Now()
	var keep []*slotRequest
	blocked := false
	for _, r := range s.queue {
		if !blocked && s.fits(r) {
			s.usedSlot++
			s.usedCPU += r.cpu
			s.usedMem += r.mem
			r.done = true
			close(r.granted)
			continue
		}
		keep = append(keep, r)
		// A request that has waited too long stops others from overtaking
		// it, so that big tasks are not starved by a stream of small ones.
		if !blocked && now.Sub(r.since) > s.starveAfter && s.usedSlot < s.slots {
			blocked = true
		}
	}
	s.queue = keep
}
