// Package browsertest drives a real headless Chromium from Go tests
// (chromedp), for the end-to-end tests of `mlpipe ui`. The browser is the
// one scripts/chromium.sh finds or installs (Debian's chromium package);
// MLPIPE_CHROMIUM names another. Without a browser the tests skip, unless
// MLPIPE_REQUIRE_BROWSER=1 (CI), where they fail.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path returns the browser's path, or "" and why there is none.
func Path() (string, string) {
	if p := os.Getenv("MLPIPE_CHROMIUM"); p != "" {
		return p, ""
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "chromium.sh")
	out, err := exec.Command(script, "path").Output()
	if err != nil {
		why := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			why = strings.TrimSpace(string(ee.Stderr))
		}
		return "", "scripts/chromium.sh: " + why
	}
	return strings.TrimSpace(string(out)), ""
}

// New starts a headless browser for the test and returns a context to
// run chromedp actions in (each action bounded by timeout); the browser
// stops with the test.
func New(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	path, why := Path()
	if path == "" {
		if os.Getenv("MLPIPE_REQUIRE_BROWSER") == "1" {
			t.Fatalf("a browser is required (MLPIPE_REQUIRE_BROWSER=1): %s", why)
		}
		t.Skipf("no browser: %s (set MLPIPE_REQUIRE_BROWSER=1 to make this a failure)", why)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox, // root in CI; the pages are the test's own
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// Start the browser now, without a timeout (a timeout on the first
	// call would stop the whole browser), so that a broken one fails here.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start %s: %v", path, err)
		}
	case <-time.After(timeout):
		t.Fatalf("start %s: no answer in %s", path, timeout)
	}
	return ctx
}

// Do runs chromedp actions with a timeout, failing the test on an error.
func Do(t *testing.T, ctx context.Context, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := chromedp.Do(rctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// Get runs one chromedp action that returns a value, with a timeout.
func Get[T any](t *testing.T, ctx context.Context, timeout time.Duration, a chromedp.Action[T]) T {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := chromedp.Run(rctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

// Screenshot writes a PNG (quality 100) of the whole page to path (the directory is made).
func Screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	buf := Get(t, ctx, 30*time.Second, chromedp.FullScreenshot(100))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
}
