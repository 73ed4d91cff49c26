package runner

import (
	"bufio"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mlpipe/mlpipe/internal/statedir"
)

// The journal makes every history record durable the moment it is made,
// at the cost of one small write: the history writer appends each record
// to <run dir>/journal.gob before queueing it for the database, which
// commits in batches. A run that ends removes its journal once everything
// is committed; after a crash, RecoverJournal puts what the database missed
// into it (mlpipe does so on resume and on its next start). So a killed
// mlpipe loses no finished task, without a database commit on any task's
// critical path.

// JournalName is the journal's file name in a run's directory.
const JournalName = "journal.gob"

func init() {
	// Dynamic values in outputs and parameters (decoded JSON and typed
	// parameters).
	gob.Register([]any{})
	gob.Register(map[string]any{})
}

// journalEntry is one record: a task or an attempt. gob keeps every
// exported field, also those the records leave out of their JSON.
type journalEntry struct {
	Task    *TaskRecord
	Attempt *AttemptRecord
}

type journal struct {
	f   *os.File
	enc *gob.Encoder
}

// openJournal starts the run's journal. One gob stream a file: a resume
// has recovered and removed the old journal before it starts a new one.
func openJournal(runDir string) (*journal, error) {
	f, err := os.OpenFile(filepath.Join(runDir, JournalName), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &journal{f: f, enc: gob.NewEncoder(f)}, nil
}

// append writes one record (gob writes each value in one write call).
func (j *journal) append(e journalEntry) error {
	return j.enc.Encode(e)
}

// remove closes and deletes the journal: everything in it is committed.
func (j *journal) remove() error {
	j.f.Close()
	return os.Remove(j.f.Name())
}

func (j *journal) close() error { return j.f.Close() }

// RecoverJournal commits what a dead run's journal holds to the history and
// removes the journal. Records are written again whole, so those the
// database already has change nothing. A record cut short by the crash ends
// the journal. It returns how many records it read; no journal is 0, nil.
func RecoverJournal(ctx context.Context, h History, runDir string) (int, error) {
	path := filepath.Join(runDir, JournalName)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("open journal: %w", err)
	}
	defer f.Close()
	dec := gob.NewDecoder(bufio.NewReader(f))
	var tasks []*TaskRecord
	var attempts []*AttemptRecord
	n := 0
	for {
		var e journalEntry
		if err := dec.Decode(&e); err != nil {
			break // the end, or a record torn by the crash
		}
		n++
		if e.Task != nil {
			tasks = append(tasks, e.Task)
		}
		if e.Attempt != nil {
			attempts = append(attempts, e.Attempt)
		}
	}
	w := &historyWriter{h: h}
	if err := w.saveErr(ctx, latestOnly(tasks), attempts); err != nil {
		return n, fmt.Errorf("recover the history of %s: %w", filepath.Base(runDir), err)
	}
	if err := os.Remove(path); err != nil {
		return n, fmt.Errorf("remove journal: %w", err)
	}
	return n, nil
}

// InterruptedMessage is the error of the tasks a dead mlpipe left running.
const InterruptedMessage = "interrupted: the mlpipe process running it died"

// CancelInterrupted closes what a run whose mlpipe died left open in the
// history: its tasks in no final state (RUNNING, PENDING) become CANCELED,
// and their unfinished attempts are given an end, so that nothing shows
// RUNNING for ever. The run keeps its own state (shown INTERRUPTED) until
// it is resumed. Call it after RecoverJournal, only for a run whose mlpipe
// is gone. It returns how many tasks it closed.
func CancelInterrupted(ctx context.Context, h History, runID string) (int, error) {
	tasks, err := h.Tasks(ctx, runID)
	if err != nil {
		return 0, err
	}
	lister, _ := h.(interface {
		Attempts(ctx context.Context, runID, path string) ([]*AttemptRecord, error)
	})
	now := time.Now()
	n := 0
	for _, t := range tasks {
		if t.State.Final() {
			continue
		}
		if lister != nil {
			atts, err := lister.Attempts(ctx, runID, t.Path)
			if err != nil {
				return n, err
			}
			for _, a := range atts {
				if !a.FinishedAt.IsZero() {
					continue
				}
				a.FinishedAt = now
				if a.Error == "" {
					a.Error = InterruptedMessage
				}
				if err := h.SaveAttempt(ctx, a); err != nil {
					return n, err
				}
			}
		}
		t.State = Canceled
		if t.StartedAt.IsZero() {
			t.StartedAt = now
		}
		t.FinishedAt = now
		if t.Error == "" {
			t.Error = InterruptedMessage
		}
		if err := h.SaveTask(ctx, t); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Recovered is what Recover put back into the history.
type Recovered struct {
	Records int // journal records committed
	Closed  int // tasks left open and marked CANCELED
}

// Recover is the one way back from a run whose mlpipe died: what its
// journal holds and the database missed is committed, then what it left
// RUNNING is closed (CancelInterrupted). Call it only for a run whose
// mlpipe is gone; both the next command (for every such run) and a resume
// (for its run) call it.
func Recover(ctx context.Context, h History, stateDir string, rec *RunRecord) (Recovered, error) {
	var out Recovered
	n, err := RecoverJournal(ctx, h, statedir.Layout{Root: stateDir}.Run(rec.ID))
	out.Records = n
	if err != nil {
		return out, err
	}
	if rec.State == Running {
		out.Closed, err = CancelInterrupted(ctx, h, rec.ID)
	}
	return out, err
}

// NeedsRecovery reports whether a run has something for Recover: it was
// left running (call Recover only once its mlpipe is gone), or it ended
// but its journal is still there — its last commits to the database
// failed, so the journal holds records the history lacks (the history
// writer closes before the run's final state is recorded, so a journal
// beside a final state is never one still being written).
func NeedsRecovery(stateDir string, r *RunRecord) bool {
	if r.State == Running {
		return true
	}
	_, err := os.Stat(filepath.Join(statedir.Layout{Root: stateDir}.Run(r.ID), JournalName))
	return err == nil
}
