package ui

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"html/template"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"

	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/internal/units"
	"github.com/mlpipe/mlpipe/metadata"
)

const (
	// headSize is how much of a text artifact the page shows.
	headSize = 64 << 10
	// previewMax is the largest artifact read for a preview (it is read
	// whole, to check its digest).
	previewMax = 64 << 20
	// rawMax is the largest artifact served raw (downloads, HTML).
	rawMax = 1 << 30
)

// rawCSP keeps an artifact served raw from running scripts or loading
// anything: it is a sandboxed document of its own origin.
const rawCSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"

// markdown renders Markdown artifacts: raw HTML in them is left out (the
// default: goldmark renders it only with html.WithUnsafe), and so are
// links with dangerous schemes (javascript:).
var markdown = goldmark.New(goldmark.WithExtensions(extension.GFM))

type artifactData struct {
	A          *metadata.Artifact
	Task       string
	Kind       string // metrics, classification, html, markdown, text, dir, other
	Metadata   []kv
	Metrics    []kv
	Matrix     *confusion
	ROC        *rocCurve
	Markdown   template.HTML
	Head       string
	HeadNote   string
	PreviewErr string
}

type confusion struct {
	Labels []string
	Rows   []confusionRow
}

type confusionRow struct {
	Label string
	Cells []confusionCell
}

type confusionCell struct {
	Value string
	Shade int // 0..9, a CSS class: inline styles are not allowed
}

type rocCurve struct {
	Points string // SVG polyline points in a 200x200 box, y up
	AUC    string
}

func (s *Server) artifact(w http.ResponseWriter, r *http.Request) *metadata.Artifact {
	uri := r.URL.Query().Get("uri")
	if uri == "" {
		s.fail(w, http.StatusBadRequest, "no artifact URI (?uri=)")
		return nil
	}
	// Only what the history recorded as an artifact is opened: the URI
	// is looked up, never joined onto a path.
	a, err := s.o.History.FindArtifact(r.Context(), uri)
	if err != nil {
		if errors.Is(err, metadata.ErrNotFound) {
			s.fail(w, http.StatusNotFound, "no run recorded an artifact at "+uri)
		} else {
			s.fail(w, http.StatusInternalServerError, err.Error())
		}
		return nil
	}
	return a
}

func (s *Server) artifactPage(w http.ResponseWriter, r *http.Request) {
	a := s.artifact(w, r)
	if a == nil {
		return
	}
	d := &artifactData{A: a, Task: contract.DisplayName(a.TaskPath), Metadata: sortedKV(a.Metadata)}
	switch {
	case a.Dir:
		d.Kind = "dir"
	case a.Type == "system.Metrics":
		d.Kind = "metrics"
		for _, k := range slices.Sorted(maps.Keys(a.Metadata)) {
			if k != "display_name" {
				d.Metrics = append(d.Metrics, kv{k, fmtValue(a.Metadata[k])})
			}
		}
	case a.Type == "system.ClassificationMetrics":
		d.Kind = "classification"
		d.Matrix = confusionMatrix(a.Metadata)
		d.ROC = roc(a.Metadata)
	case a.Type == "system.HTML":
		d.Kind = "html"
	case a.Type == "system.Markdown":
		d.Kind = "markdown"
		b, err := s.read(r, a, previewMax)
		if err != nil {
			d.PreviewErr = err.Error()
			break
		}
		var out bytes.Buffer
		if err := markdown.Convert(b, &out); err != nil {
			d.PreviewErr = err.Error()
			break
		}
		d.Markdown = template.HTML(out.String()) // goldmark without unsafe HTML
	default:
		d.Kind = "other"
		b, err := s.read(r, a, previewMax)
		if err != nil {
			d.PreviewErr = err.Error()
			break
		}
		if head, ok := textHead(b); ok {
			d.Kind, d.Head = "text", head
			if len(b) > headSize {
				d.HeadNote = fmt.Sprintf("the first %s of %s", units.Bytes(headSize), units.Bytes(int64(len(b))))
			}
		}
	}
	s.render(w, "artifact", a.Name+" — artifact", "", d)
}

// read reads an artifact whole (through the store, digest-checked).
func (s *Server) read(r *http.Request, a *metadata.Artifact, limit int64) ([]byte, error) {
	if s.o.OpenArtifact == nil {
		return nil, errors.New("this server cannot read artifacts")
	}
	if a.Size > limit {
		return nil, fmt.Errorf("%s: too large to preview (%s)", ErrTooLarge, units.Bytes(a.Size))
	}
	rc, err := s.o.OpenArtifact(r.Context(), a, limit)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, limit+1))
}

// textHead is the start of b as text, when b looks like text (UTF-8
// without NUL bytes).
func textHead(b []byte) (string, bool) {
	head := b[:min(len(b), headSize)]
	if bytes.IndexByte(head, 0) >= 0 {
		return "", false
	}
	head = completeRunes(head)
	if !utf8.Valid(head) {
		return "", false
	}
	return string(head), true
}

// artifactRaw serves an artifact's bytes: HTML artifacts as a sandboxed
// document (for the iframe of the artifact page), anything else as a
// download.
func (s *Server) artifactRaw(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", rawCSP)
	a := s.artifact(w, r)
	if a == nil {
		return
	}
	if a.Dir {
		s.fail(w, http.StatusNotFound, a.URI+" is a directory artifact: download it with mlpipe artifacts get")
		return
	}
	if s.o.OpenArtifact == nil {
		s.fail(w, http.StatusNotImplemented, "this server cannot read artifacts")
		return
	}
	rc, err := s.o.OpenArtifact(r.Context(), a, rawMax)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, ErrTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		s.fail(w, status, err.Error())
		return
	}
	defer rc.Close()
	if a.Type == "system.HTML" && r.URL.Query().Get("download") == "" {
		h.Set("Content-Type", "text/html; charset=utf-8")
	} else {
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": a.Name}))
	}
	if a.Size > 0 {
		h.Set("Content-Length", strconv.FormatInt(a.Size, 10))
	}
	h.Set("Cache-Control", "no-store")
	_, _ = io.Copy(w, io.LimitReader(rc, rawMax))
}

// confusionMatrix reads KFP's confusion matrix metadata:
// {"annotationSpecs": [{"displayName": ...}], "rows": [{"row": [...]}]}.
func confusionMatrix(md map[string]any) *confusion {
	cm, _ := md["confusionMatrix"].(map[string]any)
	if cm == nil {
		return nil
	}
	specs, _ := cm["annotationSpecs"].([]any)
	rows, _ := cm["rows"].([]any)
	if len(rows) == 0 || len(rows) > 200 {
		return nil
	}
	c := &confusion{}
	for _, sp := range specs {
		m, _ := sp.(map[string]any)
		c.Labels = append(c.Labels, fmt.Sprint(m["displayName"]))
	}
	var vals [][]float64
	var top float64
	for _, row := range rows {
		m, _ := row.(map[string]any)
		cells, _ := m["row"].([]any)
		var vs []float64
		for _, cell := range cells {
			f, _ := cell.(float64)
			vs = append(vs, f)
			top = max(top, f)
		}
		vals = append(vals, vs)
	}
	for i, vs := range vals {
		label := strconv.Itoa(i)
		if i < len(c.Labels) {
			label = c.Labels[i]
		}
		cr := confusionRow{Label: label}
		for _, v := range vs {
			shade := 0
			if top > 0 {
				shade = int(9 * v / top)
			}
			cr.Cells = append(cr.Cells, confusionCell{Value: strconv.FormatFloat(v, 'f', -1, 64), Shade: shade})
		}
		c.Rows = append(c.Rows, cr)
	}
	for len(c.Labels) < len(c.Rows) {
		c.Labels = append(c.Labels, strconv.Itoa(len(c.Labels)))
	}
	return c
}

// roc draws KFP's confidenceMetrics (falsePositiveRate, recall) as a
// curve, with its area.
func roc(md map[string]any) *rocCurve {
	cms, _ := md["confidenceMetrics"].([]any)
	type pt struct{ x, y float64 }
	var pts []pt
	for _, c := range cms {
		m, _ := c.(map[string]any)
		x, ok1 := m["falsePositiveRate"].(float64)
		y, ok2 := m["recall"].(float64)
		if ok1 && ok2 {
			pts = append(pts, pt{x, y})
		}
	}
	if len(pts) < 2 {
		return nil
	}
	slices.SortStableFunc(pts, func(a, b pt) int {
		if a.x != b.x {
			return cmp.Compare(a.x, b.x)
		}
		return cmp.Compare(a.y, b.y)
	})
	var sb strings.Builder
	var auc float64
	for i, p := range pts {
		if i > 0 {
			auc += (p.x - pts[i-1].x) * (p.y + pts[i-1].y) / 2
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%.1f,%.1f", 200*p.x, 200-200*p.y)
	}
	return &rocCurve{Points: sb.String(), AUC: strconv.FormatFloat(auc, 'f', 3, 64)}
}
