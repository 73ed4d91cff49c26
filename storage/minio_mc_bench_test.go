package storage_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mlpipe/mlpipe/storage/storagetest"
)

// TestMinIODirectoriesAgainstMC compares directory artifacts through the
// store with what a user would run instead, MinIO's own client `mc cp
// --recursive`, against one local server, in one run
// (scripts/bench/dirs.sh): 1,000 × 10 KiB, 100 × 10 MiB and 10 × 100 MiB,
// upload and download, MLPIPE_BENCH_ROUNDS rounds (default 3) alternating
// which goes first, medians. It runs with MLPIPE_BENCH_MC=PATH-TO-MC.
func TestMinIODirectoriesAgainstMC(t *testing.T) {
	mc := os.Getenv("MLPIPE_BENCH_MC")
	if mc == "" {
		t.Skip("set MLPIPE_BENCH_MC to an mc binary (scripts/mc.sh path) to run the directory benchmark")
	}
	rounds := envInt(t, "MLPIPE_BENCH_ROUNDS", 3)
	srv := storagetest.StartMinIO(t)
	s := openMinIO(t, srv, "minio://bench/store", nil)
	ctx := t.Context()
	tmp := t.TempDir()
	home := filepath.Join(tmp, "mc-home")
	mcRun := func(args ...string) error {
		cmd := exec.Command(mc, append([]string{"--quiet", "--config-dir", home}, args...)...)
		cmd.Env = append(os.Environ(), fmt.Sprintf("MC_HOST_bench=http://%s:%s@%s", srv.AccessKey, srv.SecretKey, srv.Endpoint))
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("mc %v: %v\n%s", args, err, out)
		}
		return nil
	}
	for _, shape := range []struct {
		n    int
		size int64
	}{{1000, 10 << 10}, {100, 10 << 20}, {10, 100 << 20}} {
		name := fmt.Sprintf("%dx%d", shape.n, shape.size)
		dir := filepath.Join(tmp, name)
		for i := 0; i < shape.n; i++ {
			writeRandom(t, filepath.Join(dir, fmt.Sprintf("f%04d", i)), shape.size)
		}
		total := float64(int64(shape.n) * shape.size)
		var mcUp, stUp, mcDown, stDown []time.Duration
		op := func(acc *[]time.Duration, fn func() error) {
			syscall.Sync()
			*acc = append(*acc, timed(t, fn))
		}
		for r := 0; r < rounds; r++ {
			up := []func(){
				func() {
					op(&mcUp, func() error {
						return mcRun("cp", "--recursive", dir+"/", fmt.Sprintf("bench/bench/mc/%s-%d/", name, r))
					})
				},
				func() {
					op(&stUp, func() error {
						_, err := s.Put(ctx, fmt.Sprintf("minio://bench/store/%s-%d", name, r), dir)
						return err
					})
				},
			}
			down := []func(){
				func() {
					dst := filepath.Join(tmp, "mc-down")
					op(&mcDown, func() error {
						return mcRun("cp", "--recursive", fmt.Sprintf("bench/bench/mc/%s-%d/", name, r), dst+"/")
					})
					os.RemoveAll(dst)
				},
				func() {
					dst := filepath.Join(tmp, "store-down")
					op(&stDown, func() error {
						_, err := s.Get(ctx, fmt.Sprintf("minio://bench/store/%s-%d", name, r), dst, "")
						return err
					})
					os.RemoveAll(dst)
				},
			}
			if r%2 == 1 {
				up[0], up[1] = up[1], up[0]
				down[0], down[1] = down[1], down[0]
			}
			for _, f := range append(up, down...) {
				f()
			}
		}
		mbps := func(d time.Duration) float64 { return total / d.Seconds() / 1e6 }
		mu, su, md, sd := median(mcUp), median(stUp), median(mcDown), median(stDown)
		t.Logf("%d files of %s, median of %d:", shape.n, fmtSize(shape.size), rounds)
		t.Logf("  upload:   mc %6.2fs %7.1f MB/s | store %6.2fs %7.1f MB/s | store/mc %.2fx (rounds %v / %v)", mu.Seconds(), mbps(mu), su.Seconds(), mbps(su), mu.Seconds()/su.Seconds(), mcUp, stUp)
		t.Logf("  download: mc %6.2fs %7.1f MB/s | store %6.2fs %7.1f MB/s | store/mc %.2fx (rounds %v / %v)", md.Seconds(), mbps(md), sd.Seconds(), mbps(sd), md.Seconds()/sd.Seconds(), mcDown, stDown)
		os.RemoveAll(dir)
	}
}

func fmtSize(b int64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%d MiB", b>>20)
	case b >= 1<<10:
		return fmt.Sprintf("%d KiB", b>>10)
	}
	return fmt.Sprintf("%d B", b)
}
