package kfp_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mlpipe/mlpipe/kfp"
	"github.com/mlpipe/mlpipe/kfp/kfptest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// newClient is a client of srv; o.Host defaults to the server's URL.
func newClient(t *testing.T, srv *kfptest.Server, o kfp.Options) *kfp.Client {
	t.Helper()
	if o.Host == "" {
		o.Host = srv.URL()
	}
	c, err := kfp.New(o)
	if err != nil {
		t.Fatalf("kfp.New: %v", err)
	}
	return c
}

// helloSpec is testdata/hello.json, a small PipelineSpec with one input of
// every type.
func helloSpec(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "hello.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// normalise re-encodes JSON with sorted keys and indentation.
func normalise(t *testing.T, b []byte) []byte {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// golden compares got (JSON) with testdata/name, normalised; -update
// rewrites the file.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	got = normalise(t, got)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./kfp -update to create it)", err)
	}
	if d := cmp.Diff(string(normalise(t, want)), string(got)); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, d)
	}
}

// writeToken writes a token file and returns its path.
func writeToken(t *testing.T, dir, tok string) string {
	t.Helper()
	p := filepath.Join(dir, "token")
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
