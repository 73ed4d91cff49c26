package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8"

	"github.com/mlpipe/mlpipe/runner"
	"github.com/mlpipe/mlpipe/storage"
)

// TestLiveProgressShowsTransfers: a large transfer gets a byte bar named
// after the artifact while it runs; a transfer that never finishes (it
// failed) does not keep Close waiting.
func TestLiveProgressShowsTransfers(t *testing.T) {
	var buf bytes.Buffer
	lp := newLiveProgress(&buf, 2, mpb.WithAutoRefresh(), mpb.WithWidth(160)) // a buffer is no terminal
	lp.Event(runner.Event{Task: "train", Path: "train", State: runner.Running, Time: time.Now()})
	const total = 256 << 20
	uri := "minio://mlpipeline/v2/artifacts/training/run-1/train/model"
	lp.Transfer(storage.Progress{Op: "put", URI: uri, Done: 0, Total: total})
	lp.Transfer(storage.Progress{Op: "put", URI: uri, Done: total / 2, Total: total})
	lp.Transfer(storage.Progress{Op: "get", URI: "s3://b/broken", Done: 10, Total: total})
	time.Sleep(300 * time.Millisecond) // one refresh of the view
	lp.Transfer(storage.Progress{Op: "put", URI: uri, Done: total, Total: total})
	lp.mu.Lock()
	left := len(lp.transfers)
	lp.mu.Unlock()
	if left != 1 {
		t.Errorf("%d transfers shown after one finished, want the unfinished one", left)
	}
	done := make(chan struct{})
	go func() { lp.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waits for a transfer that will never finish")
	}
	out := buf.String()
	for _, want := range []string{"upload ", "/train/model", "download s3://b/broken", "MiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("view lacks %q:\n%s", want, out)
		}
	}
}
