//go:build docker && linux && cgo

package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// GPU steps in containers, on go-nvml's 8-GPU mock: no device request (CI
// has no NVIDIA runtime), the leased UUIDs in the step's environment. Four
// 2-GPU steps and a fifth run on disjoint GPUs, each seeing exactly the
// GPUs recorded for it, and the fifth waits for a free pair.
func TestDockerGPUStepsOnMockGPUs(t *testing.T) {
	c, _ := dockerCLI(t)
	c.env = append(c.env, "MLPIPE_GPU_MOCK=dgxa100")
	step := strings.Replace(gpuStep, "image: x", "image: busybox:1.36", 1)
	step = strings.Replace(step, `echo "$0 on $CUDA_VISIBLE_DEVICES ($MLPIPE_GPU_COUNT)"`, `echo "$0 cuda=$CUDA_VISIBLE_DEVICES nvidia=$NVIDIA_VISIBLE_DEVICES"`, 1)
	dir := writeFiles(t, map[string]string{"pipeline.yaml": gpuPipeline(5, 2), "c.yaml": step})
	r, last := c.runJSON(dir, "--max-parallel", "8")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	runID := last["run_id"].(string)
	iv := gpuIntervals(t, c, runID)
	if len(iv) != 5 {
		t.Fatalf("%d steps ran, want 5", len(iv))
	}
	checkDisjoint(t, iv)
	if n := maxHeld(iv); n > 8 {
		t.Errorf("%d GPUs held at once", n)
	}
	logs := c.mustRun("logs", runID).stdout
	line := regexp.MustCompile(`(?m)\| (s\d) cuda=(\S+) nvidia=(\S+)$`)
	seen := 0
	for _, m := range line.FindAllStringSubmatch(logs, -1) {
		seen++
		want := iv[m[1]].gpus
		got := strings.Split(m[2], ",")
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) || m[2] != m[3] {
			t.Errorf("%s saw CUDA_VISIBLE_DEVICES=%s NVIDIA_VISIBLE_DEVICES=%s, leased %v", m[1], m[2], m[3], iv[m[1]].gpus)
		}
	}
	if seen != 5 {
		t.Errorf("%d steps printed their GPUs, want 5:\n%s", seen, logs)
	}
}
