package pywheel

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// WriteIndex writes a PEP 503 "simple" repository for the wheels (*.whl)
// directly inside dir: dir/simple/index.html lists the projects and
// dir/simple/<normalised-name>/index.html links to each of its wheels with
// a relative link ("../../<file>#sha256=<hex>"). Any previous dir/simple is
// replaced. The wheels stay where they are, so dir keeps working as pip's
// --find-links directory, and serving dir with net/http.FileServer gives
// an index usable as --index-url http://host/simple.
func WriteIndex(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("pywheel: index: %w", err)
	}
	projects := map[string][]string{} // normalised name → wheel files
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, ".whl") || strings.HasPrefix(name, ".") {
			continue
		}
		parts := strings.Split(strings.TrimSuffix(name, ".whl"), "-")
		if len(parts) != 5 && len(parts) != 6 {
			return fmt.Errorf("pywheel: index: %s is not a wheel file name (want name-version[-build]-python-abi-platform.whl)", name)
		}
		p := NormalizeName(parts[0])
		projects[p] = append(projects[p], name)
	}

	root := filepath.Join(dir, "simple")
	if err := os.RemoveAll(root); err != nil {
		return fmt.Errorf("pywheel: index: %w", err)
	}
	var top strings.Builder
	for _, p := range slices.Sorted(maps.Keys(projects)) {
		fmt.Fprintf(&top, "    <a href=\"%s/\">%s</a><br/>\n", url.PathEscape(p), html.EscapeString(p))
		var page strings.Builder
		files := projects[p]
		slices.Sort(files)
		for _, f := range files {
			data, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				return fmt.Errorf("pywheel: index: %w", err)
			}
			sum := sha256.Sum256(data)
			fmt.Fprintf(&page, "    <a href=\"../../%s#sha256=%s\">%s</a><br/>\n",
				html.EscapeString(url.PathEscape(f)), hex.EncodeToString(sum[:]), html.EscapeString(f))
		}
		if err := writePage(filepath.Join(root, p), "Links for "+p, page.String()); err != nil {
			return err
		}
	}
	return writePage(root, "Simple index", top.String())
}

func writePage(dir, title, body string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pywheel: index: %w", err)
	}
	page := "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"1.0\">\n" +
		"    <title>" + html.EscapeString(title) + "</title>\n  </head>\n  <body>\n" +
		"    <h1>" + html.EscapeString(title) + "</h1>\n" + body + "  </body>\n</html>\n"
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(page), 0o644); err != nil {
		return fmt.Errorf("pywheel: index: %w", err)
	}
	return nil
}
