package main

import (
	"bytes"
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vbauerster/mpb/v8"

	"github.com/mlpipe/mlpipe/runner"
	"github.com/mlpipe/mlpipe/storage"
)

// TestSecurityProgressShowsStoreWaits: when the object store does not
// answer and an operation is retried, the live and the plain views print
// "waiting for <uri> (retry n, t s)", and a transfer's bar survives it.
func TestSecurityProgressShowsStoreWaits(t *testing.T) {
	uri := "minio://mlpipeline/v2/artifacts/training/run-1/train/model"
	wait := storage.Progress{Op: "put", URI: uri, Waiting: true, Retry: 3, Waited: 20 * time.Second,
		Endpoint: "127.0.0.1:9000", Reason: "no answer from 127.0.0.1:9000 for 30 s"}
	want := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d waiting for ` + regexp.QuoteMeta(uri) + ` \(retry 3, 20 s\)$`)

	var plain bytes.Buffer
	var view transferView = &plainProgress{w: &plain}
	view.Transfer(storage.Progress{Op: "put", URI: uri, Done: 1, Total: 2}) // not shown
	view.Transfer(wait)
	if !want.MatchString(plain.String()) || strings.Count(plain.String(), "\n") != 1 {
		t.Errorf("plain view printed %q, want one line matching %s", plain.String(), want)
	}

	var live bytes.Buffer
	lp := newLiveProgress(&live, 1, mpb.WithAutoRefresh(), mpb.WithWidth(160))
	lp.Transfer(storage.Progress{Op: "put", URI: uri, Done: 10, Total: 100})
	lp.Transfer(wait)
	lp.mu.Lock()
	bars := len(lp.transfers)
	lp.mu.Unlock()
	if bars != 1 {
		t.Errorf("%d transfer bars after a wait, want the one transfer's", bars)
	}
	lp.Close()
	if !want.MatchString(live.String()) {
		t.Errorf("live view lacks a line matching %s:\n%s", want, live.String())
	}
}

// TestSecurityJSONShowsStoreWaits: with --output json a wait for the object
// store is a line of its own, with the retry and the time waited.
func TestSecurityJSONShowsStoreWaits(t *testing.T) {
	var out bytes.Buffer
	p := newProgress("json", &out, io.Discard, 1)
	p.Event(runner.Event{RunID: "r1", Task: "train", State: runner.Running})
	tv, ok := p.(transferView)
	if !ok {
		t.Fatal("the JSON view does not take transfer reports")
	}
	tv.Transfer(storage.Progress{Op: "put", URI: "minio://b/k", Waiting: true, Retry: 3, Waited: 20 * time.Second, Endpoint: "127.0.0.1:9000", Reason: "no answer"})
	tv.Transfer(storage.Progress{Op: "put", URI: "minio://b/k", Done: 10, Total: 20}) // plain progress: not an event
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines:\n%s", out.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"event": "store_wait", "run_id": "r1", "op": "put", "uri": "minio://b/k", "endpoint": "127.0.0.1:9000",
		"retry": 3.0, "waited_ms": 20000.0, "reason": "no answer", "message": "waiting for minio://b/k (retry 3, 20 s)"}
	delete(got, "time")
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}
