package storage_test

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/mlpipe/mlpipe/storage"
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
	var mcCPU time.Duration // CPU time of the last mc command
	mcRun := func(args ...string) error {
		cmd := exec.Command(mc, append([]string{"--quiet", "--config-dir", home}, args...)...)
		cmd.Env = append(os.Environ(), fmt.Sprintf("MC_HOST_bench=http://%s:%s@%s", srv.AccessKey, srv.SecretKey, srv.Endpoint))
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("mc %v: %v\n%s", args, err, out)
		}
		mcCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		return nil
	}
	// The floor: what the server takes when a client only sends (plain
	// minio-go PutObject of every file, as many in flight as the store,
	// no checksum, no payload signature, nothing hashed).
	raw := rawClient(t, srv)
	floorPut := func(dir, prefix string) error {
		type entry struct {
			Path string
			Size int64
		}
		var entries []entry
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			entries = append(entries, entry{filepath.ToSlash(rel), info.Size()})
			return nil
		})
		if err != nil {
			return err
		}
		sem := make(chan struct{}, storage.DefaultConcurrency)
		errs := make(chan error, len(entries))
		for _, e := range entries {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				f, err := os.Open(filepath.Join(dir, filepath.FromSlash(e.Path)))
				if err == nil {
					_, err = raw.PutObject(ctx, "bench", prefix+e.Path, f, e.Size, minio.PutObjectOptions{DisableContentSha256: true, DisableMultipart: true})
					f.Close()
				}
				errs <- err
			}()
		}
		for range entries {
			if err := <-errs; err != nil {
				return err
			}
		}
		return nil
	}
	shapes := []struct {
		n    int
		size int64
	}{{1000, 10 << 10}, {100, 10 << 20}, {10, 100 << 20}}
	if only := os.Getenv("MLPIPE_BENCH_DIRS"); only != "" {
		shapes = slices.DeleteFunc(shapes, func(s struct {
			n    int
			size int64
		}) bool {
			return !slices.Contains(strings.Split(only, ","), fmt.Sprint(s.n))
		})
	}
	for _, shape := range shapes {
		name := fmt.Sprintf("%dx%d", shape.n, shape.size)
		dir := filepath.Join(tmp, name)
		for i := 0; i < shape.n; i++ {
			writeRandom(t, filepath.Join(dir, fmt.Sprintf("f%04d", i)), shape.size)
		}
		total := float64(int64(shape.n) * shape.size)
		var mcUp, stUp, flUp, mcDown, stDown []time.Duration
		cpu := map[*[]time.Duration]*[2]time.Duration{} // client, server CPU over all rounds
		op := func(acc *[]time.Duration, fn func() error) {
			settle(srv, acc == &mcDown || acc == &stDown)
			c0, s0 := processCPU(), srv.CPUTime()
			mcCPU = 0
			*acc = append(*acc, timed(t, fn))
			if cpu[acc] == nil {
				cpu[acc] = &[2]time.Duration{}
			}
			cpu[acc][0] += processCPU() - c0 + mcCPU
			cpu[acc][1] += srv.CPUTime() - s0
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
				func() {
					op(&flUp, func() error { return floorPut(dir, fmt.Sprintf("floor/%s-%d/", name, r)) })
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
				slices.Reverse(up)
				slices.Reverse(down)
			}
			for _, f := range append(up, down...) {
				f()
			}
		}
		mbps := func(d time.Duration) float64 { return total / d.Seconds() / 1e6 }
		mu, su, fu, md, sd := median(mcUp), median(stUp), median(flUp), median(mcDown), median(stDown)
		t.Logf("%d files of %s, median of %d:", shape.n, fmtSize(shape.size), rounds)
		t.Logf("  upload:   mc %6.2fs %7.1f MB/s | store %6.2fs %7.1f MB/s | store/mc %.2fx (rounds %v / %v)", mu.Seconds(), mbps(mu), su.Seconds(), mbps(su), mu.Seconds()/su.Seconds(), mcUp, stUp)
		t.Logf("  upload floor (plain PutObject, %d in flight, nothing hashed): %6.2fs %7.1f MB/s | floor/mc %.2fx, store/floor %.2fx (rounds %v)", storage.DefaultConcurrency, fu.Seconds(), mbps(fu), mu.Seconds()/fu.Seconds(), fu.Seconds()/su.Seconds(), flUp)
		t.Logf("  download: mc %6.2fs %7.1f MB/s | store %6.2fs %7.1f MB/s | store/mc %.2fx (rounds %v / %v)", md.Seconds(), mbps(md), sd.Seconds(), mbps(sd), md.Seconds()/sd.Seconds(), mcDown, stDown)
		for _, c := range []struct {
			name string
			acc  *[]time.Duration
		}{{"mc upload", &mcUp}, {"store upload", &stUp}, {"floor upload", &flUp}, {"mc download", &mcDown}, {"store download", &stDown}} {
			v := cpu[c.acc]
			t.Logf("  CPU per round, %s: client %.2fs, server %.2fs", c.name, v[0].Seconds()/float64(rounds), v[1].Seconds()/float64(rounds))
		}
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
