package runner

import (
	"context"
	"sync"
)

// memo computes a value once per key and keeps it for the run. Concurrent
// callers of one key wait for the first caller's result (or their own
// context); the lock is held only to find or add the entry, never while
// computing, so slow computations of different keys run side by side.
type memo[V any] struct {
	mu sync.Mutex
	m  map[string]*memoEntry[V]
}

type memoEntry[V any] struct {
	done chan struct{}
	v    V
	err  error
}

func (m *memo[V]) get(ctx context.Context, key string, compute func() (V, error)) (V, error) {
	m.mu.Lock()
	e, ok := m.m[key]
	if !ok {
		if m.m == nil {
			m.m = map[string]*memoEntry[V]{}
		}
		e = &memoEntry[V]{done: make(chan struct{})}
		m.m[key] = e
		m.mu.Unlock()
		e.v, e.err = compute()
		close(e.done)
		return e.v, e.err
	}
	m.mu.Unlock()
	select {
	case <-e.done:
		return e.v, e.err
	case <-ctx.Done():
		var zero V
		return zero, context.Cause(ctx)
	}
}
