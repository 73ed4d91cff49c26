package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// historyWriter takes task and attempt records off the tasks' critical
// path: records are queued and committed in order by one goroutine, in
// batches. Order is what keeps the history consistent after a crash: a
// record is committed only after every record queued before it, so a
// task's result is never durable without its producers' results.
type historyWriter struct {
	h   History
	log *slog.Logger

	mu        sync.Mutex
	cond      *sync.Cond
	tasks     []*TaskRecord
	attempts  []*AttemptRecord
	queued    uint64 // records queued so far
	committed uint64 // records committed so far
	closed    bool
	journal   *journal      // nil: none, or it failed
	failed    bool          // a commit failed: keep the journal
	waiting   int           // waitFor() calls waiting: commit now
	kick      chan struct{} // wakes the writer from its linger
	done      chan struct{}
}

// historyLinger is the least time between the starts of two commits, unless
// a task waits for one (waitFor). Records that arrive meanwhile share one
// transaction, and a task that starts and ends within it is written once:
// with short tasks this halves the history's CPU, which on a small machine
// competes with the tasks.
const historyLinger = 20 * time.Millisecond

// newHistoryWriter starts a writer; with a run directory, records go to its
// journal first.
func newHistoryWriter(h History, log *slog.Logger, runDir string) *historyWriter {
	w := &historyWriter{h: h, log: log, done: make(chan struct{}), kick: make(chan struct{}, 1)}
	if runDir != "" {
		j, err := openJournal(runDir)
		if err != nil {
			log.Warn("no run journal: a crash may lose the last records of the history", "err", err)
		} else {
			w.journal = j
		}
	}
	w.cond = sync.NewCond(&w.mu)
	go w.loop()
	return w
}

// task queues a task record (a copy is taken) and returns its sequence.
func (w *historyWriter) task(t *TaskRecord) uint64 {
	cp := *t
	w.mu.Lock()
	defer w.mu.Unlock()
	w.journalAppend(journalEntry{Task: &cp})
	w.tasks = append(w.tasks, &cp)
	w.queued++
	w.cond.Broadcast()
	return w.queued
}

// attempt queues an attempt record.
func (w *historyWriter) attempt(a *AttemptRecord) uint64 {
	cp := *a
	w.mu.Lock()
	defer w.mu.Unlock()
	w.journalAppend(journalEntry{Attempt: &cp})
	w.attempts = append(w.attempts, &cp)
	w.queued++
	w.cond.Broadcast()
	return w.queued
}

// journalAppend writes a record to the journal (w.mu held, so the journal
// has the records in their order).
func (w *historyWriter) journalAppend(e journalEntry) {
	if w.journal == nil {
		return
	}
	if err := w.journal.append(e); err != nil {
		w.log.Warn("run journal failed; a crash may lose the last records of the history", "err", err)
		w.journal.close()
		w.journal = nil
		w.failed = true // what it holds is not all in the database yet
	}
}

// mark returns the sequence of the last record queued so far.
func (w *historyWriter) mark() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.queued
}

// barrier waits until every record queued so far is committed.
func (w *historyWriter) barrier() { w.waitFor(w.mark()) }

// waitFor waits until the records up to sequence target are committed,
// waking the writer from its linger if it has to.
func (w *historyWriter) waitFor(target uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed >= target || w.closed {
		return
	}
	w.waiting++
	defer func() { w.waiting-- }()
	select {
	case w.kick <- struct{}{}:
	default:
	}
	for w.committed < target && !w.closed {
		w.cond.Wait()
	}
}

// close commits what is queued and stops the writer.
func (w *historyWriter) close() {
	w.barrier()
	w.mu.Lock()
	w.closed = true
	w.cond.Broadcast()
	w.mu.Unlock()
	<-w.done
	if w.journal != nil && !w.failed {
		if err := w.journal.remove(); err != nil {
			w.log.Warn("remove the run journal", "err", err)
		}
	} else if w.journal != nil {
		w.journal.close()
	}
}

func (w *historyWriter) loop() {
	defer close(w.done)
	ctx := context.Background()
	var last time.Time
	for {
		w.mu.Lock()
		for len(w.tasks) == 0 && len(w.attempts) == 0 && !w.closed {
			w.cond.Wait()
		}
		if wait := historyLinger - time.Since(last); wait > 0 && !w.closed && w.waiting == 0 {
			w.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-w.kick:
				t.Stop()
			}
			w.mu.Lock()
		}
		last = time.Now()
		if w.closed && len(w.tasks) == 0 && len(w.attempts) == 0 {
			w.mu.Unlock()
			return
		}
		tasks, attempts := w.tasks, w.attempts
		w.tasks, w.attempts = nil, nil
		n := uint64(len(tasks) + len(attempts))
		w.mu.Unlock()

		w.save(ctx, latestOnly(tasks), attempts)

		w.mu.Lock()
		w.committed += n
		w.cond.Broadcast()
		w.mu.Unlock()
	}
}

func (w *historyWriter) save(ctx context.Context, tasks []*TaskRecord, attempts []*AttemptRecord) {
	if err := w.saveErr(ctx, tasks, attempts); err != nil {
		w.log.Error("save run history (kept in the run's journal)", "err", err)
		w.mu.Lock()
		w.failed = true
		w.mu.Unlock()
	}
}

func (w *historyWriter) saveErr(ctx context.Context, tasks []*TaskRecord, attempts []*AttemptRecord) error {
	if b, ok := w.h.(BatchSaver); ok {
		return b.SaveBatch(ctx, tasks, attempts)
	}
	var errs []error
	// Attempts first: a task record may refer to its attempts.
	for _, a := range attempts {
		if err := w.h.SaveAttempt(ctx, a); err != nil {
			errs = append(errs, fmt.Errorf("save attempt of %s: %w", a.TaskPath, err))
		}
	}
	for _, t := range tasks {
		if err := w.h.SaveTask(ctx, t); err != nil {
			errs = append(errs, fmt.Errorf("save task %s: %w", t.Path, err))
		}
	}
	return errors.Join(errs...)
}

// latestOnly keeps, of several records of one task in a batch, the last
// (a task that ran and finished between two commits is written once).
func latestOnly(tasks []*TaskRecord) []*TaskRecord {
	if len(tasks) < 2 {
		return tasks
	}
	last := make(map[[2]string]int, len(tasks))
	for i, t := range tasks {
		last[[2]string{t.RunID, t.Path}] = i
	}
	out := tasks[:0:0]
	for i, t := range tasks {
		if last[[2]string{t.RunID, t.Path}] != i {
			// Keep what only the earlier record carries.
			later := tasks[last[[2]string{t.RunID, t.Path}]]
			if later.StartedAt.IsZero() {
				later.StartedAt = t.StartedAt
			}
			if later.Attempt == nil && t.Attempt != nil {
				later.Attempt = t.Attempt
			}
			if later.Cache == nil && t.Cache != nil {
				later.Cache = t.Cache
			}
			continue
		}
		out = append(out, t)
	}
	return out
}
