package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8"

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
