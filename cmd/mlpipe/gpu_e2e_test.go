//go:build linux && cgo

package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlpipe/mlpipe/metadata"
)

const gpuStep = `
name: gpu-step
inputs: [{name: id, type: String}, {name: seconds, type: Float, default: '0.4'}]
implementation:
  container:
    image: x
    command:
    - sh
    - -c
    - |
      echo "$0 on $CUDA_VISIBLE_DEVICES ($MLPIPE_GPU_COUNT)"
      [ -n "$COUNT_DIR" ] && echo $$ > "$COUNT_DIR/$0.pid"
      sleep "$1"
    args: [{inputValue: id}, {inputValue: seconds}]
`

func gpuPipeline(n, gpus int) string {
	var b strings.Builder
	b.WriteString("name: gpus\ntasks:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  s%d: {component: c.yaml, inputs: {id: s%d}, resources: {gpu: %d}, cache: false}\n", i, i, gpus)
	}
	return b.String()
}

type interval struct {
	start, end time.Time
	gpus       []string
}

func gpuIntervals(t *testing.T, c *cli, runID string) map[string]interval {
	t.Helper()
	h, err := openTestHistory(c)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	return executeIntervals(t, h, runID)
}

// executeIntervals are the execute phases of a run's attempts with their
// GPUs, by task path.
func executeIntervals(t *testing.T, h *metadata.Store, runID string) map[string]interval {
	t.Helper()
	ats, err := h.Attempts(t.Context(), runID, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]interval{}
	for _, a := range ats {
		for _, p := range a.Phases {
			if p.Name == "execute" {
				out[a.TaskPath] = interval{p.Start, p.End, a.GPUs}
			}
		}
	}
	return out
}

// TestFourTwoGPUStepsOnEightGPUMock: 4 steps × 2 GPUs on go-nvml's 8-GPU
// mock run all at once on disjoint GPUs; 5 such steps run four, then one.
func TestFourTwoGPUStepsOnEightGPUMock(t *testing.T) {
	for _, n := range []int{4, 5} {
		t.Run(fmt.Sprint(n, " steps"), func(t *testing.T) {
			c := newCLI(t)
			c.env = append(c.env, "MLPIPE_GPU_MOCK=dgxa100")
			dir := writeFiles(t, map[string]string{"pipeline.yaml": gpuPipeline(n, 2), "c.yaml": gpuStep})
			r, last := c.runJSON(dir, "--max-parallel", "8")
			if r.code != 0 {
				t.Fatalf("exit %d\n%s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, "MOCK dgxa100") {
				t.Errorf("the run does not say the GPUs are a mock:\n%s", r.stderr)
			}
			runID := last["run_id"].(string)
			iv := gpuIntervals(t, c, runID)
			if len(iv) != n {
				t.Fatalf("%d steps ran, want %d", len(iv), n)
			}
			// GPUs of overlapping steps are disjoint, and each step has 2.
			keys := make([]string, 0, n)
			for k := range iv {
				keys = append(keys, k)
			}
			sort.Slice(keys, func(i, j int) bool { return iv[keys[i]].start.Before(iv[keys[j]].start) })
			for _, a := range keys {
				if len(iv[a].gpus) != 2 {
					t.Errorf("%s held %v", a, iv[a].gpus)
				}
			}
			checkDisjoint(t, iv)
			// The first four ran together; a fifth started after one ended.
			first4 := keys[:4]
			latestStart := iv[first4[0]].start
			earliestEnd := iv[first4[0]].end
			for _, k := range first4 {
				latestStart = later(latestStart, iv[k].start)
				earliestEnd = earlier(earliestEnd, iv[k].end)
			}
			if !latestStart.Before(earliestEnd) {
				t.Errorf("the first four steps did not all run at once")
			}
			if n == 5 && iv[keys[4]].start.Before(earliestEnd) {
				t.Errorf("the fifth step started before any GPU was free")
			}
			// runs show lists each task's GPUs.
			for _, tk := range c.show(runID).Tasks {
				if len(tk.GPUs) != 2 {
					t.Errorf("runs show: %s gpus %v", tk.Name, tk.GPUs)
				}
			}
		})
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// TestKilledRunReleasesGPUs: SIGKILL mlpipe while a GPU step runs; the step
// dies with it and its GPU lease is released (mlpipe gpus shows no holder).
func TestKilledRunReleasesGPUs(t *testing.T) {
	c := newCLI(t)
	counts := t.TempDir()
	c.env = append(c.env, "MLPIPE_GPU_MOCK=dgxa100", "COUNT_DIR="+counts, "MLPIPE_PROCESS_PASS_ENV=COUNT_DIR")
	dir := writeFiles(t, map[string]string{"pipeline.yaml": "name: hold\ntasks:\n  s0: {component: c.yaml, inputs: {id: s0, seconds: 60}, resources: {gpu: 8}}\n", "c.yaml": gpuStep})
	cmd := exec.Command(mlpipeBin, "run", dir)
	cmd.Env, cmd.Dir = c.env, c.dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(counts, "s0.pid")
	waitForFile(t, cmd, pidFile, "the step never started")
	var held struct {
		Mock    bool `json:"mock"`
		Devices []struct {
			HeldBy *struct {
				RunID string `json:"run_id"`
			} `json:"held_by"`
		} `json:"devices"`
	}
	out := c.mustRun("gpus", "--output", "json").stdout
	if err := json.Unmarshal([]byte(out), &held); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range held.Devices {
		if d.HeldBy != nil {
			n++
		}
	}
	if !held.Mock || n != 8 {
		t.Fatalf("while running: mock=%v, %d GPUs held, want 8", held.Mock, n)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	// The step's shell died with mlpipe; its sleep lives on and keeps the
	// GPUs until the next mlpipe run reaps the interrupted run's processes.
	c.mustRun("run", "pipelines/quickstart")
	deadline := time.Now().Add(5 * time.Second)
	for {
		out = c.mustRun("gpus", "--output", "json").stdout
		held.Devices = nil
		_ = json.Unmarshal([]byte(out), &held)
		n = 0
		for _, d := range held.Devices {
			if d.HeldBy != nil {
				n++
			}
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d GPUs still held after the run was killed:\n%s", n, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
