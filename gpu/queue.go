package gpu

// The waiting requests of every process, for fairness across processes and
// users: each request waiting for GPUs has a ticket in the lock
// directory's queue file, written only under alloc.lock. A request that
// has waited past StarveAfter reserves the GPUs that free up: no younger
// request asking for fewer GPUs is served before it, whichever process or
// user it comes from (the same rule as within one process).

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/mlpipe/mlpipe/internal/procfs"
)

// Ticket is one waiting request in the queue.
type Ticket struct {
	ID       string    `json:"id"`
	PID      int       `json:"pid"`
	PIDStart string    `json:"pid_start,omitempty"`
	Host     string    `json:"host"`
	UID      int       `json:"uid"`
	User     string    `json:"user"`
	RunID    string    `json:"run_id"`
	Task     string    `json:"task"`
	Count    int       `json:"count"`
	Type     string    `json:"type,omitempty"`
	Since    time.Time `json:"since"`
}

// Limits on what is read of the queue file: it is shared, and parsed
// defensively.
const (
	maxQueueBytes  = 4 << 20
	maxTickets     = 10_000
	maxTicketBytes = 4 << 10
)

func newTicketID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// readQueue reads the tickets of a queue file; lines that do not parse or
// are longer than a ticket can be are dropped.
func readQueue(f *os.File) []Ticket {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, maxQueueBytes))
	if err != nil {
		return nil
	}
	var out []Ticket
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(out) >= maxTickets {
			break
		}
		var t Ticket
		if len(line) <= maxTicketBytes && json.Unmarshal(line, &t) == nil && t.ID != "" && t.Count > 0 {
			out = append(out, t)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Since.Before(out[j].Since) })
	return out
}

func writeQueue(f *os.File, ts []Ticket) error {
	var b bytes.Buffer
	for _, t := range ts {
		line, err := json.Marshal(t)
		if err != nil {
			return err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	if _, err := f.WriteAt(b.Bytes(), 0); err != nil {
		return err
	}
	return f.Truncate(int64(b.Len()))
}

// live keeps the tickets of live processes of this host owned by the uid
// they name: the directory is this machine's, so another host's ticket is
// stale (or forged), as is one of a process that is gone or another user's.
func (a *Allocator) live(ts []Ticket) []Ticket {
	out := ts[:0]
	for _, t := range ts {
		if t.Host == a.host && t.PID > 0 && procfs.StartTime(t.PID) == t.PIDStart && t.PIDStart != "" && procfs.Owner(t.PID) == t.UID {
			out = append(out, t)
		}
	}
	return out
}

// openQueue opens the queue file for reading and writing (alloc.lock
// held). A queue that cannot be written (a file another user made in a
// legacy directory) is read only: the request then waits without a ticket.
func (a *Allocator) openQueue() (*os.File, bool) {
	f, err := openInDir(a.dir, a.opts.LockDir, queueName, syscall.O_RDWR, a.canCreate)
	if err == nil {
		a.shareFile(f)
		return f, true
	}
	f, err = openInDir(a.dir, a.opts.LockDir, queueName, syscall.O_RDONLY, false)
	if err == nil {
		return f, false
	}
	return nil, false
}

// queueTurn registers w's ticket (the first time) and says whether w may
// take GPUs now, and if not, behind whom it waits. alloc.lock is held.
func (a *Allocator) queueTurn(w *waiter) (ok bool, why string) {
	q, writable := a.openQueue()
	if q == nil {
		return true, ""
	}
	defer q.Close()
	ts := a.live(readQueue(q))
	if w.ticket == "" && writable && len(ts) < maxTickets {
		pid := os.Getpid()
		w.ticket = newTicketID()
		ts = append(ts, Ticket{ID: w.ticket, PID: pid, PIDStart: procfs.StartTime(pid), Host: a.host, UID: a.uid, User: a.user,
			RunID: w.run, Task: w.task, Count: w.req.Count, Type: w.req.Type, Since: w.since})
	}
	if writable {
		_ = writeQueue(q, ts)
	}
	now := time.Now()
	var held map[int]int // GPUs held per uid, for the per-user limit
	for _, o := range ts {
		if o.ID == w.ticket {
			break
		}
		if !o.Since.Before(w.since) || now.Sub(o.Since) <= a.opts.StarveAfter || o.Count <= w.req.Count {
			continue
		}
		// An older request reserves what is freed only if the freed GPUs
		// could serve it: the same kind of GPU, and its user under the
		// per-user limit (otherwise it waits for its own GPUs, not others').
		if !genericType(o.Type) && !genericType(w.req.Type) && !strings.EqualFold(o.Type, w.req.Type) {
			continue
		}
		if a.opts.MaxPerUser > 0 {
			if held == nil {
				held = a.heldPerUser()
			}
			if held[o.UID]+o.Count > a.opts.MaxPerUser {
				continue
			}
		}
		return false, fmt.Sprintf("behind %s's request for %d GPU(s) (run %s, task %s), waiting since %s", o.User, o.Count, o.RunID, o.Task, o.Since.Local().Format(time.TimeOnly))
	}
	return true, ""
}

// dropTicket removes w's ticket (served, cancelled or failed).
func (a *Allocator) dropTicket(w *waiter, lockHeld bool) {
	if w.ticket == "" {
		return
	}
	if !lockHeld {
		global, err := a.lockFile(allocLockName, true, false)
		if err != nil {
			return
		}
		defer global.Close()
	}
	q, writable := a.openQueue()
	if q == nil {
		return
	}
	defer q.Close()
	if writable {
		ts := readQueue(q)
		out := ts[:0]
		for _, t := range ts {
			if t.ID != w.ticket {
				out = append(out, t)
			}
		}
		_ = writeQueue(q, out)
	}
	w.ticket = ""
}

// Queue lists the requests waiting for GPUs now, oldest first.
func (a *Allocator) Queue() []Ticket {
	f, err := openInDir(a.dir, a.opts.LockDir, queueName, syscall.O_RDONLY, false)
	if err != nil {
		return nil
	}
	defer f.Close()
	return a.live(readQueue(f))
}

// describeHolders names who holds the GPUs a waiting request could use:
// "bob (run R, task T), alice (...)".
func describeHolders(infos []LeaseInfo) string {
	seen := map[string]bool{}
	var parts []string
	for _, in := range infos {
		who := in.User
		if who == "" {
			who = fmt.Sprintf("pid %d", in.PID)
		}
		s := fmt.Sprintf("%s (run %s, task %s)", who, in.RunID, in.Task)
		if !seen[s] {
			seen[s] = true
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ")
}
