package pywheel

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Package is a pure-Python distribution to write as a wheel.
type Package struct {
	Name, Version string            // e.g. "mlpipe-testpkg", "1.0.0"
	Files         map[string][]byte // path inside the wheel -> content, e.g. "mlpipe_testpkg/__init__.py"
	Requires      []string          // Requires-Dist lines (optional)
}

var (
	nameRE    = regexp.MustCompile(`^(?i:[a-z0-9]|[a-z0-9][a-z0-9._-]*[a-z0-9])$`)
	versionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.!+_-]*$`)
	sepRunRE  = regexp.MustCompile(`[-_.]+`)
)

// zipTime is the fixed modification time of every wheel entry (the zip
// format cannot store anything earlier).
var zipTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// NormalizeName returns the PEP 503 normalised project name: lower case,
// runs of "-", "_" and "." replaced by one "-" ("Mlpipe_TestPkg" →
// "mlpipe-testpkg"). Index directories use it.
func NormalizeName(name string) string {
	return strings.ToLower(sepRunRE.ReplaceAllString(name, "-"))
}

// distName is the name as used in wheel file and .dist-info directory
// names: normalised with "_" as separator.
func distName(name string) string {
	return strings.ToLower(sepRunRE.ReplaceAllString(name, "_"))
}

// WheelFilename returns the file name Write uses for p, e.g.
// "mlpipe_testpkg-1.0.0-py3-none-any.whl".
func WheelFilename(p Package) string {
	return distName(p.Name) + "-" + strings.ReplaceAll(p.Version, "-", "_") + "-py3-none-any.whl"
}

func (p Package) validate() error {
	if !nameRE.MatchString(p.Name) {
		return fmt.Errorf("pywheel: invalid distribution name %q", p.Name)
	}
	if !versionRE.MatchString(p.Version) {
		return fmt.Errorf("pywheel: invalid version %q for %s", p.Version, p.Name)
	}
	infoDir := p.distInfo() + "/"
	for name := range p.Files {
		clean := path.Clean(name)
		switch {
		case name == "" || clean != name || path.IsAbs(name) || strings.Contains(name, `\`) ||
			clean == ".." || strings.HasPrefix(clean, "../") || strings.HasSuffix(name, "/"):
			return fmt.Errorf("pywheel: %s: invalid file path %q (want a clean relative slash path)", p.Name, name)
		case strings.HasPrefix(name, infoDir):
			return fmt.Errorf("pywheel: %s: file %q is inside the generated %s", p.Name, name, infoDir)
		}
	}
	for _, r := range p.Requires {
		if r == "" || strings.ContainsAny(r, "\r\n") {
			return fmt.Errorf("pywheel: %s: invalid Requires-Dist %q", p.Name, r)
		}
	}
	return nil
}

func (p Package) distInfo() string {
	return distName(p.Name) + "-" + strings.ReplaceAll(p.Version, "-", "_") + ".dist-info"
}

// Write writes the wheel into dir (created if needed) and returns its path.
// The result is deterministic: entries are sorted, the .dist-info files
// (METADATA, WHEEL, RECORD) come last, and all timestamps are fixed.
func Write(dir string, p Package) (string, error) {
	if err := p.validate(); err != nil {
		return "", err
	}
	data, err := p.wheelBytes()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("pywheel: %w", err)
	}
	dst := filepath.Join(dir, WheelFilename(p))
	tmp, err := os.CreateTemp(dir, ".pywheel-*.tmp")
	if err != nil {
		return "", fmt.Errorf("pywheel: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return "", fmt.Errorf("pywheel: writing %s: %w", dst, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("pywheel: writing %s: %w", dst, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", fmt.Errorf("pywheel: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", fmt.Errorf("pywheel: %w", err)
	}
	return dst, nil
}

func (p Package) metadata() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Metadata-Version: 2.1\nName: %s\nVersion: %s\n", p.Name, p.Version)
	for _, r := range p.Requires {
		fmt.Fprintf(&b, "Requires-Dist: %s\n", r)
	}
	return b.Bytes()
}

func wheelFile() []byte {
	return []byte("Wheel-Version: 1.0\nGenerator: mlpipe-pywheel (1.0)\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
}

// recordHash is the RECORD hash of data: sha256=<urlsafe base64, no padding>.
func recordHash(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256=" + base64.RawURLEncoding.EncodeToString(sum[:])
}

func (p Package) wheelBytes() ([]byte, error) {
	info := p.distInfo()
	type entry struct {
		name string
		data []byte
	}
	var entries []entry
	for _, name := range slices.Sorted(maps.Keys(p.Files)) {
		entries = append(entries, entry{name, p.Files[name]})
	}
	entries = append(entries,
		entry{info + "/METADATA", p.metadata()},
		entry{info + "/WHEEL", wheelFile()})

	var record bytes.Buffer
	cw := csv.NewWriter(&record)
	for _, e := range entries {
		_ = cw.Write([]string{e.name, recordHash(e.data), fmt.Sprint(len(e.data))})
	}
	_ = cw.Write([]string{info + "/RECORD", "", ""})
	cw.Flush()
	if err := cw.Error(); err != nil {
		return nil, fmt.Errorf("pywheel: RECORD: %w", err)
	}
	entries = append(entries, entry{info + "/RECORD", record.Bytes()})

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: zipTime}
		h.SetMode(0o644)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, fmt.Errorf("pywheel: %w", err)
		}
		if _, err := w.Write(e.data); err != nil {
			return nil, fmt.Errorf("pywheel: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("pywheel: %w", err)
	}
	return buf.Bytes(), nil
}
