package kfp

import (
	"context"
	"fmt"
	"time"
)

// WaitOptions tune WaitRun.
type WaitOptions struct {
	// Interval between polls (default 5 s).
	Interval time.Duration
	// Timeout gives up waiting (the run goes on); 0 waits for ever.
	Timeout time.Duration
	// MaxErrors is how many transient errors in a row are tolerated
	// (default 30).
	MaxErrors int
	// OnChange is called with the run when its state changes, and with the
	// first answer.
	OnChange func(*Run)
	// OnPoll is called with every answer, after OnChange (to follow the
	// run's tasks).
	OnPoll func(*Run)
	// OnRetry is called with each transient error before the next poll.
	OnRetry func(error)
}

// WaitTimeoutError is returned when the timeout passes before the run
// reaches a terminal state.
type WaitTimeoutError struct {
	RunID   string
	State   RuntimeState
	Timeout time.Duration
}

func (e *WaitTimeoutError) Error() string {
	return fmt.Sprintf("run %s is still %s after %s", e.RunID, e.State, e.Timeout)
}

// WaitRun polls a run until its state is terminal (SUCCEEDED, FAILED,
// SKIPPED or CANCELED) and returns it. An absent state is not terminal.
// Network errors and 5xx answers are retried at the next poll; 401, 403,
// 404 and other client errors end the wait at once. The state of each
// answer is checked before the deadline, so a run that finished on the
// last poll is returned rather than timed out.
func (c *Client) WaitRun(ctx context.Context, runID string, o WaitOptions) (*Run, error) {
	if o.Interval <= 0 {
		o.Interval = DefaultPollInterval
	}
	if o.MaxErrors <= 0 {
		o.MaxErrors = 30
	}
	var deadline time.Time
	if o.Timeout > 0 {
		deadline = time.Now().Add(o.Timeout)
	}
	var last *Run
	errs := 0
	for {
		r, err := c.GetRun(ctx, runID)
		switch {
		case err == nil:
			errs = 0
			if last == nil || r.State != last.State {
				if o.OnChange != nil {
					o.OnChange(r)
				}
			}
			if o.OnPoll != nil {
				o.OnPoll(r)
			}
			last = r
			if r.State.Terminal() {
				return r, nil
			}
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case !IsTransient(err):
			return nil, err
		default:
			errs++
			if errs > o.MaxErrors {
				return nil, fmt.Errorf("wait for run %s: %d errors in a row: %w", runID, errs, err)
			}
			if o.OnRetry != nil {
				o.OnRetry(err)
			}
		}
		sleep := o.Interval
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				st := StateUnspecified
				if last != nil {
					st = last.State
				}
				return last, &WaitTimeoutError{RunID: runID, State: st, Timeout: o.Timeout}
			}
			sleep = min(sleep, left)
		}
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
