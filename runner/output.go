package runner

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/mlpipe/mlpipe/internal/termsafe"
)

// terminal is the run's shared output (Options.Output): one line at a
// time, so that the lines of parallel tasks never interleave.
type terminal struct {
	mu sync.Mutex
	w  io.Writer
}

func (t *terminal) writeLine(line []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _ = t.w.Write(line)
}

// lineWriter prefixes every line of a task's output with its name and
// writes whole lines to the terminal.
type lineWriter struct {
	t      *terminal
	prefix []byte
	buf    []byte
}

// outputWriter returns the terminal writer for a task, or nil.
func (r *run) outputWriter(name string) *lineWriter {
	if r.opts.Output == nil {
		return nil
	}
	return &lineWriter{t: &r.out, prefix: []byte(name + " | ")}
}

func (l *lineWriter) Write(p []byte) (int, error) {
	if l == nil {
		return len(p), nil
	}
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.emit(l.buf[:i+1])
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > 64<<10 {
		l.Flush()
	}
	return len(p), nil
}

func (l *lineWriter) emit(line []byte) {
	out := make([]byte, 0, len(l.prefix)+len(line)+1)
	out = append(out, l.prefix...)
	// A step's escape sequences must not drive the user's terminal.
	out = append(out, termsafe.Line(line)...)
	if out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	l.t.writeLine(out)
}

// Flush writes a trailing partial line.
func (l *lineWriter) Flush() {
	if l == nil || len(l.buf) == 0 {
		return
	}
	l.emit(l.buf)
	l.buf = nil
}

// notef writes a note about a task into the run's output ("task | note:
// ..."), for what mlpipe changed or left out on its way to running it.
func (r *run) notef(task, format string, args ...any) {
	if w := r.outputWriter(task); w != nil {
		fmt.Fprintf(w, "note: "+format+"\n", args...)
	}
	r.log.Info("note", "task", task, "message", fmt.Sprintf(format, args...))
}
