package storage

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Progress reports how far a large transfer has come.
type Progress struct {
	Op    string // "put" or "get"
	URI   string
	Done  int64 // bytes transferred so far
	Total int64 // bytes in all
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
