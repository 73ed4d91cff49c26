package storage_test

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/mlpipe/mlpipe/storage"
	"github.com/mlpipe/mlpipe/storage/storagetest"
)

// TestMinIOThroughput compares the store with plain minio-go against one
// local MinIO server, in one run (scripts/bench/minio.sh):
//
//   - a large file (MLPIPE_BENCH_MIB, default 1024 MiB) up and down
//     through the store against PutObject/GetObject of the same file;
//   - a directory artifact of 1,000 files of 10 KiB against uploading the
//     files one by one.
//
// Each measurement is repeated MLPIPE_BENCH_ROUNDS times (default 3),
// alternating which side goes first, and the median is reported. It only
// runs with MLPIPE_BENCH_MINIO=1.
func TestMinIOThroughput(t *testing.T) {
	if os.Getenv("MLPIPE_BENCH_MINIO") != "1" {
		t.Skip("set MLPIPE_BENCH_MINIO=1 to run the MinIO benchmark")
	}
	mib := envInt(t, "MLPIPE_BENCH_MIB", 1024)
	rounds := envInt(t, "MLPIPE_BENCH_ROUNDS", 3)
	srv := storagetest.StartMinIO(t)
	s := openMinIO(t, srv, "minio://bench/store", nil)
	c := rawClient(t, srv)
	ctx := t.Context()
	tmp := t.TempDir()

	// The large file.
	big := filepath.Join(tmp, "big")
	writeRandom(t, big, int64(mib)<<20)
	size := float64(int64(mib) << 20)
	mbps := func(d time.Duration) float64 { return size / d.Seconds() / 1e6 }
	var plainUp, storeUp, plainDown, storeDown, plainVerify, storeVerify []time.Duration
	cpu := map[string]*[2]time.Duration{} // op → client, server CPU over all rounds
	measure := func(op string, fn func() error) time.Duration {
		// Earlier rounds' dirty pages (GiBs) are written back first, and
		// the server finishes what it does after a write (removing the
		// replaced version's data), so that no operation is slowed by
		// another's leftovers: whichever went first after the uploads
		// used to pay for them.
		settle(srv, strings.Contains(op, "get") || strings.Contains(op, "verify"))
		c0, s0 := processCPU(), srv.CPUTime()
		d := timed(t, fn)
		if cpu[op] == nil {
			cpu[op] = &[2]time.Duration{}
		}
		cpu[op][0] += processCPU() - c0
		cpu[op][1] += srv.CPUTime() - s0
		return d
	}
	for r := range rounds {
		up := []func(){
			func() {
				plainUp = append(plainUp, measure("plain put", func() error {
					f, err := os.Open(big)
					if err != nil {
						return err
					}
					defer f.Close()
					_, err = c.PutObject(ctx, "bench", "plain/big", f, int64(size), minio.PutObjectOptions{})
					return err
				}))
			},
			func() {
				storeUp = append(storeUp, measure("store put", func() error {
					_, err := s.Put(ctx, "minio://bench/store/big", big)
					return err
				}))
			},
		}
		down := []func(){
			func() {
				dst := filepath.Join(tmp, "plain-down")
				plainDown = append(plainDown, measure("plain get", func() error {
					o, err := c.GetObject(ctx, "bench", "plain/big", minio.GetObjectOptions{})
					if err != nil {
						return err
					}
					defer o.Close()
					f, err := os.Create(dst)
					if err != nil {
						return err
					}
					if _, err := io.Copy(f, o); err != nil {
						f.Close()
						return err
					}
					return f.Close()
				}))
				os.Remove(dst)
			},
			func() {
				dst := filepath.Join(tmp, "store-down")
				storeDown = append(storeDown, measure("store get", func() error {
					_, err := s.Get(ctx, "minio://bench/store/big", dst, "")
					return err
				}))
				os.Remove(dst)
			},
			// The same without the local disk: what the transfer and its
			// verification cost, apart from writing the file.
			func() {
				plainVerify = append(plainVerify, measure("plain get to discard", func() error {
					o, err := c.GetObject(ctx, "bench", "plain/big", minio.GetObjectOptions{})
					if err != nil {
						return err
					}
					defer o.Close()
					_, err = io.Copy(io.Discard, o)
					return err
				}))
			},
			func() {
				storeVerify = append(storeVerify, measure("store verify", func() error {
					_, err := s.Get(ctx, "minio://bench/store/big", "", "")
					return err
				}))
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
	pu, su, pd, sd := median(plainUp), median(storeUp), median(plainDown), median(storeDown)
	pv, sv := median(plainVerify), median(storeVerify)
	t.Logf("large file, %d MiB, median of %d (rounds: put %v / %v, get %v / %v):", mib, rounds, plainUp, storeUp, plainDown, storeDown)
	t.Logf("  upload:   plain PutObject %6.2fs %7.1f MB/s | store Put %6.2fs %7.1f MB/s | ratio %.2f",
		pu.Seconds(), mbps(pu), su.Seconds(), mbps(su), pu.Seconds()/su.Seconds())
	t.Logf("  download: plain GetObject %6.2fs %7.1f MB/s | store Get %6.2fs %7.1f MB/s | ratio %.2f",
		pd.Seconds(), mbps(pd), sd.Seconds(), mbps(sd), pd.Seconds()/sd.Seconds())
	t.Logf("  no disk:  plain GetObject to io.Discard %6.2fs %7.1f MB/s | store Get verify only %6.2fs %7.1f MB/s | ratio %.2f (rounds %v / %v)",
		pv.Seconds(), mbps(pv), sv.Seconds(), mbps(sv), pv.Seconds()/sv.Seconds(), plainVerify, storeVerify)
	for _, op := range []string{"plain put", "store put", "plain get", "store get", "plain get to discard", "store verify"} {
		c := cpu[op]
		t.Logf("  CPU per round, %s: client %.2fs, server %.2fs", op, c[0].Seconds()/float64(rounds), c[1].Seconds()/float64(rounds))
	}
	os.Remove(big)

	// The directory of small files.
	dir := filepath.Join(tmp, "dir")
	const nFiles = 1000
	for i := range nFiles {
		writeRandom(t, filepath.Join(dir, fmt.Sprintf("shard-%02d", i%10), fmt.Sprintf("part-%04d", i)), 10<<10)
	}
	entries, err := storage.ScanDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var seq, par []time.Duration
	var seqCPU, parCPU time.Duration
	for r := range rounds {
		one := func() {
			cpu := srv.CPUTime()
			defer func() { seqCPU += srv.CPUTime() - cpu }()
			seq = append(seq, timed(t, func() error {
				for _, e := range entries {
					f, err := os.Open(filepath.Join(dir, filepath.FromSlash(e.Path)))
					if err != nil {
						return err
					}
					_, err = c.PutObject(ctx, "bench", fmt.Sprintf("plain-dir-%d/%s", r, e.Path), f, e.Size, minio.PutObjectOptions{})
					f.Close()
					if err != nil {
						return err
					}
				}
				return nil
			}))
		}
		all := func() {
			cpu := srv.CPUTime()
			defer func() { parCPU += srv.CPUTime() - cpu }()
			par = append(par, timed(t, func() error {
				_, err := s.Put(ctx, fmt.Sprintf("minio://bench/store/dir-%d", r), dir)
				return err
			}))
		}
		if r%2 == 0 {
			one()
			all()
		} else {
			all()
			one()
		}
	}
	ms, mp := median(seq), median(par)
	t.Logf("directory, %d files of 10 KiB, median of %d:", nFiles, rounds)
	t.Logf("  one by one (plain PutObject) %6.2fs | store Put (%d in flight) %6.2fs | speed-up %.2f",
		ms.Seconds(), storage.DefaultConcurrency, mp.Seconds(), ms.Seconds()/mp.Seconds())
	t.Logf("  rounds: one by one %v | store %v", seq, par)
	t.Logf("  server CPU per file: one by one %.2f ms | store %.2f ms (%d cores)",
		seqCPU.Seconds()*1000/float64(rounds*nFiles), parCPU.Seconds()*1000/float64(rounds*nFiles), runtime.NumCPU())
	for _, conc := range []int{4, 64} {
		sc := openMinIO(t, srv, "minio://bench/store", func(o *storage.MinIOOptions) { o.Concurrency = conc })
		d := timed(t, func() error {
			_, err := sc.Put(ctx, fmt.Sprintf("minio://bench/store/dir-c%d", conc), dir)
			return err
		})
		t.Logf("  store Put with %d in flight: %6.2fs (speed-up %.2f, one run)", conc, d.Seconds(), ms.Seconds()/d.Seconds())
	}
	dd := timed(t, func() error {
		_, err := s.Get(ctx, "minio://bench/store/dir-0", filepath.Join(tmp, "dir-down"), "")
		return err
	})
	t.Logf("  store Get of the directory: %6.2fs (one run)", dd.Seconds())
}

// settle writes back dirty pages and waits (at most 10 s) until the server
// has used less than 10 ms of CPU in 250 ms. Before a download (drop), as
// root, it also drops the page cache: otherwise the first download to a
// file after the uploads pays for reclaiming the cache they filled, and
// the second reuses the pages the first one's file freed (measured: the
// first of each pair took twice as long, whichever client it was). Uploads
// start with their source in the page cache, as after a step wrote it.
func settle(srv *storagetest.MinIOServer, drop bool) {
	syscall.Sync()
	for range 40 {
		c := srv.CPUTime()
		time.Sleep(250 * time.Millisecond)
		if srv.CPUTime()-c < 10*time.Millisecond {
			break
		}
	}
	syscall.Sync()
	if drop {
		_ = os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0)
	}
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func timed(t *testing.T, fn func() error) time.Duration {
	t.Helper()
	start := time.Now()
	if err := fn(); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.SortFunc(s, cmp.Compare)
	return s[len(s)/2]
}

// writeRandom writes size pseudo-random bytes to a new file at p.
func writeRandom(t *testing.T, p string, size int64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, min(size, 4<<20))
	h := fnv.New64a()
	h.Write([]byte(p))
	x := h.Sum64() | 1
	for size > 0 {
		for i := 0; i+8 <= len(buf); i += 8 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			for j := range 8 {
				buf[i+j] = byte(x >> (8 * j))
			}
		}
		n := min(int64(len(buf)), size)
		if _, err := f.Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
		size -= n
	}
}
