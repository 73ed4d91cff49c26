package storage

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Progress reports how far a large transfer has come, or, with Waiting
// set, that an operation of any size waits for a server that failed or
// stopped answering and is about to be tried again.
type Progress struct {
	Op    string // "put" or "get" (a wait: also "stat", "list", "delete", "open", ...)
	URI   string
	Done  int64 // bytes transferred so far
	Total int64 // bytes in all

	// Waiting marks a wait report: Done and Total are zero, Retry is the
	// retry about to be made (1 for the first), Waited the time since the
	// operation began, Endpoint the server's host:port and Reason why the
	// last attempt failed (never holding the secret key). WaitMessage
	// formats it.
	Waiting  bool
	Retry    int
	Waited   time.Duration
	Endpoint string
	Reason   string
}

// WaitMessage is the line a view shows for a wait report:
// "waiting for minio://bucket/key (retry 3, 20 s)".
func (p Progress) WaitMessage() string {
	return fmt.Sprintf("waiting for %s (retry %d, %s)", p.URI, p.Retry, fmtSeconds(p.Waited))
}

// progressInterval is the least time between two reports of a transfer.
const progressInterval = 200 * time.Millisecond

// progressTracker counts the bytes of one transfer, possibly from several
// goroutines, and reports them to the callback at most every
// progressInterval (and once at the end). A nil tracker counts nothing.
type progressTracker struct {
	fn    func(Progress)
	op    string
	uri   string
	total int64
	done  atomic.Int64

	mu   sync.Mutex // serialises calls of fn
	last time.Time
}

// newProgress returns a tracker, or nil when fn is nil or the transfer is
// smaller than min.
func newProgress(fn func(Progress), min int64, op, uri string, total int64) *progressTracker {
	if fn == nil || total < min {
		return nil
	}
	return &progressTracker{fn: fn, op: op, uri: uri, total: total}
}

func (p *progressTracker) add(n int64) {
	if p == nil {
		return
	}
	p.done.Add(n)
	if !p.mu.TryLock() {
		return
	}
	defer p.mu.Unlock()
	if time.Since(p.last) < progressInterval {
		return
	}
	p.last = time.Now()
	p.fn(Progress{Op: p.op, URI: p.uri, Done: min(p.done.Load(), p.total), Total: p.total})
}

// reset starts the count again (a retried transfer).
func (p *progressTracker) reset() {
	if p != nil {
		p.done.Store(0)
	}
}

// finish reports the end of a successful transfer.
func (p *progressTracker) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fn(Progress{Op: p.op, URI: p.uri, Done: p.total, Total: p.total})
}

// hook returns the tracker as minio-go's progress reader (which is handed
// each chunk after it is sent), or a nil interface for a nil tracker.
func (p *progressTracker) hook() io.Reader {
	if p == nil {
		return nil
	}
	return progressHook{p}
}

type progressHook struct{ p *progressTracker }

func (h progressHook) Read(b []byte) (int, error) {
	h.p.add(int64(len(b)))
	return len(b), nil
}

// reader counts the bytes read through r.
func (p *progressTracker) reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return &countingReader{r: r, p: p}
}

type countingReader struct {
	r io.Reader
	p *progressTracker
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.add(int64(n))
	return n, err
}
