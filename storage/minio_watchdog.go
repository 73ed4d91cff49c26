package storage

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// A server that stops answering (a frozen process, a hung disk, a network
// that drops packets silently) must not hang a run. Every HTTP request
// the MinIO store makes goes through watchdogTransport, which cancels it
// when it has made no progress for MinIOOptions.RequestTimeout:
//
//   - from the start of the request until the response headers arrive,
//     progress is the request body being taken by the connection (so an
//     upload of any size is fine as long as bytes move), and the idle time
//     counts from the last byte taken (or the start);
//   - while the caller reads the response body, each Read must return
//     within the idle time; time the caller spends between Reads (writing
//     to a slow disk) does not count.
//
// So a long transfer is never cut for being long, only for standing still.
//
// A request that stalls cancels the whole attempt of the store operation
// it belongs to (the context that retry gives fn): minio-go's own retry
// loop then stops at once instead of trying again, sibling requests (the
// other parts of a multipart upload) stop too, and retry counts one
// attempt, reports the wait and tries again with backoff. Requests made
// under an attempt that already stalled (minio-go aborting the multipart
// upload it was doing) fail at once without touching the network.

// stallError is the cause of an attempt cancelled by the watchdog.
type stallError struct {
	host string
	idle time.Duration
}

func (e *stallError) Error() string {
	return fmt.Sprintf("no answer from %s for %s", e.host, fmtSeconds(e.idle))
}

// attempt is one try of a store operation, found by the transport in the
// requests' contexts.
type attempt struct {
	cancel context.CancelCauseFunc
	ctx    context.Context
	stall  atomic.Pointer[stallError]
}

type attemptKey struct{}

// newAttempt derives the context of one attempt from ctx.
func newAttempt(ctx context.Context) (*attempt, context.Context) {
	a := &attempt{}
	actx, cancel := context.WithCancelCause(ctx)
	a.cancel = cancel
	a.ctx = context.WithValue(actx, attemptKey{}, a)
	return a, a.ctx
}

// stalled returns the stall that ended the attempt, or nil.
func (a *attempt) stalled() *stallError { return a.stall.Load() }

// markStalled ends the attempt because a request stalled.
func (a *attempt) markStalled(se *stallError) {
	a.stall.CompareAndSwap(nil, se)
	a.cancel(se)
}

// watchdogTransport is an http.RoundTripper that cancels requests that
// make no progress for idle (see above).
type watchdogTransport struct {
	base http.RoundTripper
	idle time.Duration
	host string // for messages
}

func (t *watchdogTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	a, _ := req.Context().Value(attemptKey{}).(*attempt)
	if a != nil {
		if se := a.stalled(); se != nil {
			// The attempt is over and the server known not to answer:
			// what minio-go sends now is cleanup (aborting a multipart
			// upload), which the server would not answer either.
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, se
		}
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	se := &stallError{host: t.host, idle: t.idle}
	wd := newWatchdog(t.idle, func() {
		cancel(se)
		// Only a live attempt is ended: a request under an attempt that
		// is over anyway (cleanup after a cancellation) just fails.
		if a != nil && a.ctx.Err() == nil {
			a.markStalled(se)
		}
	})
	r := req.WithContext(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		r.Body = &kickingBody{rc: req.Body, wd: wd}
	}
	if req.GetBody != nil {
		getBody := req.GetBody
		r.GetBody = func() (io.ReadCloser, error) {
			b, err := getBody()
			if err != nil || b == nil || b == http.NoBody {
				return b, err
			}
			return &kickingBody{rc: b, wd: wd}, nil
		}
	}
	wd.arm()
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		wd.stop()
		cancel(nil)
		if wd.fired.Load() {
			return nil, se
		}
		return nil, err
	}
	wd.disarm()
	resp.Body = &watchedBody{rc: resp.Body, wd: wd, cancel: cancel, se: se}
	return resp, nil
}

// kickingBody is a request body whose reads (by the connection, as it
// sends) count as progress.
type kickingBody struct {
	rc io.ReadCloser
	wd *watchdog
}

func (k *kickingBody) Read(p []byte) (int, error) {
	n, err := k.rc.Read(p)
	k.wd.kick()
	return n, err
}

func (k *kickingBody) Close() error { return k.rc.Close() }

// watchedBody is a response body each of whose reads must return within
// the idle time.
type watchedBody struct {
	rc     io.ReadCloser
	wd     *watchdog
	cancel context.CancelCauseFunc
	se     *stallError
	once   sync.Once
}

func (w *watchedBody) Read(p []byte) (int, error) {
	w.wd.arm()
	n, err := w.rc.Read(p)
	w.wd.disarm()
	if err != nil && err != io.EOF && w.wd.fired.Load() {
		err = w.se
	}
	return n, err
}

func (w *watchedBody) Close() error {
	w.wd.stop()
	err := w.rc.Close()
	w.once.Do(func() { w.cancel(nil) })
	return err
}

// watchdog calls onFire once when it has been armed and seen no progress
// for idle. Progress is arming it, or kick while armed.
type watchdog struct {
	idle   time.Duration
	base   time.Time
	last   atomic.Int64 // nanoseconds since base of the last progress
	armed  atomic.Bool
	done   atomic.Bool
	fired  atomic.Bool
	onFire func()
	mu     sync.Mutex
	timer  *time.Timer
}

func newWatchdog(idle time.Duration, onFire func()) *watchdog {
	return &watchdog{idle: idle, base: time.Now(), onFire: onFire}
}

func (w *watchdog) now() int64 { return int64(time.Since(w.base)) }

func (w *watchdog) arm() {
	w.last.Store(w.now())
	w.armed.Store(true)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer == nil && !w.done.Load() {
		w.timer = time.AfterFunc(w.idle, w.check)
	}
}

func (w *watchdog) kick() { w.last.Store(w.now()) }

func (w *watchdog) disarm() { w.armed.Store(false) }

func (w *watchdog) stop() {
	w.done.Store(true)
	w.armed.Store(false)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
	}
}

// check runs when the timer goes off: it fires when armed and idle long
// enough, else sets the timer again for when that could be the case.
func (w *watchdog) check() {
	if w.done.Load() {
		return
	}
	idleFor := time.Duration(w.now() - w.last.Load())
	if w.armed.Load() && idleFor >= w.idle {
		if w.fired.CompareAndSwap(false, true) {
			w.onFire()
		}
		return
	}
	next := w.idle
	if w.armed.Load() {
		next = w.idle - idleFor
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done.Load() {
		w.timer.Reset(max(next, time.Millisecond))
	}
}

// fmtSeconds writes a duration for people: "0.5 s", "4.2 s", "30 s".
func fmtSeconds(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%.0f s", d.Seconds())
}
