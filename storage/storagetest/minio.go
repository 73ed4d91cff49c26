package storagetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mlpipe/mlpipe/internal/procfs"
	"github.com/mlpipe/mlpipe/storage"
)

// MinIOServer is a real MinIO server started for a test, on 127.0.0.1
// with its own data directory and random credentials.
type MinIOServer struct {
	Endpoint  string // 127.0.0.1:port
	AccessKey string
	SecretKey string
	// CAFile is the PEM certificate of a TLS server (StartMinIOTLS), else "".
	CAFile string
	// ChecksumKey is the stores' checksum key in Options (random).
	ChecksumKey []byte

	t       testing.TB
	bin     string
	dataDir string
	logFile string
	certDir string
	client  *http.Client
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
}

// StartMinIO starts a server that stops when the test ends. Without a
// MinIO binary the test is skipped, or fails when MLPIPE_REQUIRE_MINIO=1
// or CI is set.
func StartMinIO(t testing.TB) *MinIOServer {
	t.Helper()
	return startMinIO(t, false)
}

// StartMinIOTLS starts a server that speaks TLS with a self-signed
// certificate for 127.0.0.1, written to CAFile.
func StartMinIOTLS(t testing.TB) *MinIOServer {
	t.Helper()
	return startMinIO(t, true)
}

func startMinIO(t testing.TB, withTLS bool) *MinIOServer {
	t.Helper()
	bin, err := minioBinary()
	if err != nil {
		if os.Getenv("MLPIPE_REQUIRE_MINIO") == "1" || os.Getenv("CI") != "" {
			t.Fatalf("MinIO server required (MLPIPE_REQUIRE_MINIO or CI is set): %v", err)
		}
		t.Skipf("no MinIO server binary (set MLPIPE_MINIO_BIN or run scripts/minio.sh path): %v", err)
	}
	dir := t.TempDir()
	s := &MinIOServer{
		Endpoint:    "127.0.0.1:" + freePort(t),
		AccessKey:   "mlpipe" + randomHex(t, 6),
		SecretKey:   randomHex(t, 18),
		ChecksumKey: []byte(randomHex(t, 16)),
		t:           t,
		bin:         bin,
		dataDir:     filepath.Join(dir, "data"),
		logFile:     filepath.Join(dir, "minio.log"),
		client:      http.DefaultClient,
	}
	if withTLS {
		s.certDir = filepath.Join(dir, "certs")
		s.CAFile = filepath.Join(s.certDir, "public.crt")
		pool := writeCert(t, s.certDir)
		s.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	t.Cleanup(s.Stop)
	s.Start()
	return s
}

// Options returns store options for this server: plain HTTP, its
// credentials, quick retries.
func (s *MinIOServer) Options() storage.MinIOOptions {
	return storage.MinIOOptions{
		Endpoint:        s.Endpoint,
		AccessKey:       s.AccessKey,
		SecretKey:       s.SecretKey,
		DisableTLS:      s.CAFile == "",
		CAFile:          s.CAFile,
		PathStyle:       true,
		RetryBackoff:    100 * time.Millisecond,
		RetryMaxBackoff: time.Second,
		ChecksumKey:     s.ChecksumKey,
	}
}

// Start starts the server (again, after Stop) on the same address and data
// directory and waits until it is live.
func (s *MinIOServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	log, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer log.Close()
	args := []string{"server", s.dataDir, "--address", s.Endpoint, "--console-address", "127.0.0.1:0", "--quiet"}
	if s.certDir != "" {
		args = append(args, "--certs-dir", s.certDir)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start MinIO: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(60 * time.Second)
	url := "http://" + s.Endpoint + "/minio/health/live"
	if s.CAFile != "" {
		url = "https://" + s.Endpoint + "/minio/health/live"
	}
	for {
		resp, err := s.client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			s.cmd = nil
			s.t.Fatalf("MinIO exited at start: %s", s.logTail())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("MinIO did not become live in 60s: %s", s.logTail())
		}
	}
}

// CPUTime returns the CPU time the running server has used, read from
// /proc (Linux); 0 when unknown.
func (s *MinIOServer) CPUTime() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	st, err := procfs.ReadStat(s.cmd.Process.Pid)
	if err != nil {
		return 0
	}
	return time.Duration(st.UTime+st.STime) * 10 * time.Millisecond // ticks of 1/100 s
}

// DataDir is where the server keeps its objects (for tests that damage
// one on disk).
func (s *MinIOServer) DataDir() string { return s.dataDir }

// Freeze stops the server process (SIGSTOP) without closing anything: it
// keeps accepting connections in the kernel but answers nothing, as a
// hung server does, until Thaw. Stop works on a frozen server.
func (s *MinIOServer) Freeze() {
	s.signal(syscall.SIGSTOP)
	// The signal is delivered asynchronously: wait until every thread of
	// the server has stopped, so that no request is answered after Freeze.
	s.mu.Lock()
	pid := s.cmd.Process.Pid
	s.mu.Unlock()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if procfs.Stopped(pid) {
			return
		}
	}
	s.t.Fatalf("MinIO (pid %d) did not stop within 5 s of SIGSTOP", pid)
}

// Thaw lets a frozen server run again (SIGCONT).
func (s *MinIOServer) Thaw() { s.signal(syscall.SIGCONT) }

func (s *MinIOServer) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		s.t.Fatalf("MinIO is not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v to MinIO: %v", sig, err)
	}
}

// Stop kills the server (like a crash) and waits until it is gone.
func (s *MinIOServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

func (s *MinIOServer) logTail() string {
	b, _ := os.ReadFile(s.logFile)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// minioBinary finds the server: $MLPIPE_MINIO_BIN, else what
// scripts/minio.sh path prints (building it if needed), once per process.
func minioBinary() (string, error) {
	binOnce.Do(func() {
		if p := os.Getenv("MLPIPE_MINIO_BIN"); p != "" {
			if _, err := os.Stat(p); err != nil {
				binErr = fmt.Errorf("MLPIPE_MINIO_BIN: %w", err)
				return
			}
			binPath = p
			return
		}
		script, err := findScript()
		if err != nil {
			binErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "bash", script, "path")
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			binErr = fmt.Errorf("%s path: %w: %s", script, err, strings.TrimSpace(stderr.String()))
			return
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		binPath = strings.TrimSpace(lines[len(lines)-1])
		if _, err := os.Stat(binPath); err != nil {
			binErr = fmt.Errorf("%s path printed %q: %w", script, binPath, err)
		}
	})
	return binPath, binErr
}

// findScript looks for scripts/minio.sh in the working directory and its
// parents (tests run in their package's directory inside the repository).
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", "minio.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("scripts/minio.sh not found above the working directory")
		}
		dir = parent
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 as
// dir/public.crt and its key as dir/private.key (MinIO's names), and
// returns a pool that trusts it.
func writeCert(t testing.TB, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "mlpipe test MinIO"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "public.crt"), certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "private.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return pool
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
