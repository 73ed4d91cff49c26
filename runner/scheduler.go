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
	s.insertLocked(r)
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

// insertLocked keeps the queue in dispatch order: longest remaining path
// first, then arrival. A new request goes after every request of its
// priority or higher (its seq is the largest).
func (s *scheduler) insertLocked(r *slotRequest) {
	i := sort.Search(len(s.queue), func(i int) bool { return s.queue[i].priority < r.priority })
	s.queue = append(s.queue, nil)
	copy(s.queue[i+1:], s.queue[i:])
	s.queue[i] = r
}

// dispatchLocked grants, in queue order, every request that fits. It stops
// at the first one once no slot is left (nothing further can fit), so a
// release costs the few requests it looks at, not the whole queue (10,000
// loop iterations may wait at once).
func (s *scheduler) dispatchLocked() {
	if len(s.queue) == 0 || s.usedSlot >= s.slots {
		return
	}
	now := time.Now()
	blocked := false
	out := s.queue[:0]
	for i, r := range s.queue {
		if blocked || s.usedSlot >= s.slots {
			out = append(out, s.queue[i:]...)
			break
		}
		if s.fits(r) {
			s.usedSlot++
			s.usedCPU += r.cpu
			s.usedMem += r.mem
			r.done = true
			close(r.granted)
			continue
		}
		out = append(out, r)
		// A request that has waited too long stops others from overtaking
		// it, so that big tasks are not starved by a stream of small ones.
		if now.Sub(r.since) > s.starveAfter {
			blocked = true
		}
	}
	clear(s.queue[len(out):])
	s.queue = out
}
