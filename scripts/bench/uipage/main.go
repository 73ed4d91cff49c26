// Command uipage measures `mlpipe ui` for scripts/bench/ui.sh:
//
//	uipage load BASE_URL RUN_ID N R   time for a real headless Chromium to show
//	                                 the run page with its N DAG nodes and
//	                                 their states (best and median of R loads)
//	uipage events BASE_URL RUN_ID     bytes per second of the run page's
//	                                 server-sent events while the run goes on
//	                                 (the peak over 1-second windows, and the
//	                                 total), until the stream ends
//
// The browser is Debian's chromium (scripts/chromium.sh path), or
// MLPIPE_CHROMIUM.
package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: uipage load BASE RUN N R | uipage events BASE RUN")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "load":
		n, _ := strconv.Atoi(os.Args[4])
		r, _ := strconv.Atoi(os.Args[5])
		err = load(os.Args[2], os.Args[3], n, r)
	case "events":
		err = events(os.Args[2], os.Args[3])
	default:
		err = fmt.Errorf("unknown measurement %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "uipage:", err)
		os.Exit(1)
	}
}

func browser() (string, error) {
	if p := os.Getenv("MLPIPE_CHROMIUM"); p != "" {
		return p, nil
	}
	out, err := exec.Command("scripts/chromium.sh", "path").Output()
	return strings.TrimSpace(string(out)), err
}

func load(base, run string, n, r int) error {
	path, err := browser()
	if err != nil {
		return fmt.Errorf("no browser: %w", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1400, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel2 := chromedp.NewContext(actx)
	defer cancel2()
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		return err
	}
	// All nodes drawn, and the page's script has run over them (the
	// first events message, or no stream for a finished run).
	ready := fmt.Sprintf(`document.querySelectorAll("g.node").length >= %d && document.readyState === "complete"`, n)
	var times []time.Duration
	for i := 0; i < r; i++ {
		tctx, tcancel := context.WithTimeout(ctx, 2*time.Minute)
		start := time.Now()
		err := chromedp.Do(tctx, chromedp.Navigate(base+"/runs/"+run))
		if err == nil {
			_, err = chromedp.Run(tctx, chromedp.Poll[bool](ready, chromedp.WithPollingInterval(5*time.Millisecond)))
		}
		d := time.Since(start)
		tcancel()
		if err != nil {
			return err
		}
		times = append(times, d)
		_ = chromedp.Do(ctx, chromedp.Navigate("about:blank"))
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	fmt.Printf("run page with %d nodes: best %s, median %s (%d loads)\n", n, times[0].Round(time.Millisecond), times[len(times)/2].Round(time.Millisecond), r)
	return nil
}

func events(base, run string) error {
	resp, err := http.Get(base + "/runs/" + run + "/events")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("events: %s", resp.Status)
	}
	rd := bufio.NewReader(resp.Body)
	start := time.Now()
	window, windowStart := 0, start
	peak, total, msgs := 0, 0, 0
	for {
		line, err := rd.ReadBytes('\n')
		total += len(line)
		window += len(line)
		if strings.HasPrefix(string(line), "data:") {
			msgs++
		}
		if now := time.Now(); now.Sub(windowStart) >= time.Second || err != nil {
			if window > peak {
				peak = window
			}
			window, windowStart = 0, now
		}
		if err != nil {
			break
		}
	}
	el := time.Since(start)
	fmt.Printf("events: %d bytes in %d messages over %s; peak %d bytes in a 1-second window (%.3f MB/s)\n", total, msgs, el.Round(time.Millisecond), peak, float64(peak)/1e6)
	return nil
}
