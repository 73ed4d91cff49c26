package browsertest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The harness itself: a page whose script changes an element is seen
// changed by the browser.
func TestBrowserRunsScripts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<!doctype html><p id="x">before</p><script>document.getElementById("x").textContent = "after"</script>`))
	}))
	defer srv.Close()
	ctx := New(t, 60*time.Second)
	Do(t, ctx, 30*time.Second, chromedp.Navigate(srv.URL))
	text := Get(t, ctx, 30*time.Second, chromedp.Text("#x"))
	if text != "after" {
		t.Fatalf("text = %q, want the script's", text)
	}
}

func TestScreenshot(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<!doctype html><h1>mlpipe</h1>`))
	}))
	defer srv.Close()
	ctx := New(t, 60*time.Second)
	Do(t, ctx, 30*time.Second, chromedp.Navigate(srv.URL))
	path := filepath.Join(t.TempDir(), "shot.png")
	Screenshot(t, ctx, path)
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 100 || string(b[1:4]) != "PNG" {
		t.Fatalf("screenshot: %v, %d bytes", err, len(b))
	}
}
