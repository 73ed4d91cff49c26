package kfptest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// writeJSON answers 200 with v.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// rpcError answers a gateway error in the configured style. short is the
// user-facing message of details[0] (none when empty); long is the
// top-level message, the internal error chain.
func (s *Server) rpcError(w http.ResponseWriter, status, code int, short, long string) {
	body := map[string]any{"code": code, "message": long}
	if short != "" {
		body["details"] = []any{map[string]any{
			"@type": "type.googleapis.com/google.rpc.Status", "code": code, "message": short,
		}}
	} else {
		body["details"] = []any{}
	}
	if s.opts.ErrorStyle == ErrorsLegacy {
		body["error"] = long
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// uploadError answers in the upload handler's own format.
func uploadError(w http.ResponseWriter, status int, msg, details string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error_message": msg, "error_details": details})
}

// badRequest is a 400 InvalidArgument with a KFP-style message.
func (s *Server) badRequest(w http.ResponseWriter, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.rpcError(w, http.StatusBadRequest, 3, "Invalid input error: "+msg, "Invalid input error: "+msg)
}

// notFound is a 404 NotFound.
func (s *Server) notFound(w http.ResponseWriter, what, id string) {
	msg := fmt.Sprintf("%s %s not found", what, id)
	s.rpcError(w, http.StatusNotFound, 5, msg, "ResourceNotFoundError: "+msg)
}

// internal is a 500 whose details say only "Internal Server Error", the way
// KFP wraps user mistakes (empty names, bad inline specs).
func (s *Server) internal(w http.ResponseWriter, long string) {
	s.rpcError(w, http.StatusInternalServerError, 13, "Internal Server Error", long)
}

// decode reads a bare JSON body into v, rejecting unknown fields (new
// servers) unless AllowUnknownFields. It answers the error itself.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	b, _ := io.ReadAll(r.Body)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if !s.opts.AllowUnknownFields {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		msg := strings.TrimPrefix(err.Error(), "json: ")
		s.rpcError(w, http.StatusBadRequest, 3, "", "proto: (line 1:2): "+msg)
		return false
	}
	return true
}

// readUpload extracts the uploadfile part of a multipart body.
func readUpload(r *http.Request, body []byte) *UploadedFile {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return nil
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			return nil
		}
		if p.FormName() == "uploadfile" {
			b, err := io.ReadAll(p)
			if err != nil {
				return nil
			}
			return &UploadedFile{FileName: p.FileName(), Content: b}
		}
	}
}

// checkQuery refuses query parameters a route does not know (the real
// gateway ignores them silently; the fake flags them).
func (s *Server) checkQuery(w http.ResponseWriter, r *http.Request, known ...string) bool {
	for k := range r.URL.Query() {
		found := false
		for _, n := range known {
			found = found || k == n
		}
		if !found {
			s.badRequest(w, "kfptest: unexpected query parameter %q", k)
			return false
		}
	}
	return true
}

// item is one element of a list, with its filterable string fields.
type item struct {
	id      string
	created time.Time
	fields  map[string]string
	json    map[string]any
}

var operations = map[string]string{
	"1": "EQUALS", "2": "NOT_EQUALS", "3": "GREATER_THAN", "5": "GREATER_THAN_EQUALS",
	"6": "LESS_THAN", "7": "LESS_THAN_EQUALS", "8": "IN", "9": "IS_SUBSTRING",
}

type predicate struct {
	key, op, value string
}

// parseFilter reads the filter parameter as the server does, unescaping it
// a second time after query decoding.
func parseFilter(raw string, keys []string) ([]predicate, error) {
	if raw == "" {
		return nil, nil
	}
	text, err := url.QueryUnescape(raw)
	if err != nil {
		return nil, fmt.Errorf("failed to unescape filter %q: %v", raw, err)
	}
	var f struct {
		Predicates []map[string]json.RawMessage `json:"predicates"`
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("failed to parse filter %q: %v", text, err)
	}
	var out []predicate
	for _, m := range f.Predicates {
		var p predicate
		for k, v := range m {
			switch k {
			case "key":
				if err := json.Unmarshal(v, &p.key); err != nil {
					return nil, fmt.Errorf("bad predicate key: %v", err)
				}
			case "operation", "op":
				var s string
				if json.Unmarshal(v, &s) != nil {
					s = operations[string(v)]
				}
				p.op = s
			case "string_value", "stringValue":
				if err := json.Unmarshal(v, &p.value); err != nil {
					return nil, fmt.Errorf("bad string value: %v", err)
				}
			default:
				return nil, fmt.Errorf("kfptest: predicate member %q is not supported by the fake", k)
			}
		}
		known := false
		for _, k := range keys {
			known = known || k == p.key
		}
		if !known {
			return nil, fmt.Errorf("no support for filtering on unrecognized field %q", p.key)
		}
		switch p.op {
		case "EQUALS", "NOT_EQUALS", "IS_SUBSTRING":
		default:
			return nil, fmt.Errorf("kfptest: operation %q is not supported by the fake", p.op)
		}
		out = append(out, p)
	}
	return out, nil
}

func (p predicate) match(it item) bool {
	v := it.fields[p.key]
	switch p.op {
	case "EQUALS":
		return v == p.value
	case "NOT_EQUALS":
		return v != p.value
	}
	return strings.Contains(v, p.value)
}

// page filters, sorts and pages items and answers {key: [...],
// total_size, next_page_token}, omitting what is empty.
func (s *Server) page(w http.ResponseWriter, r *http.Request, items []item, keys []string, key string) {
	q := r.URL.Query()
	preds, err := parseFilter(q.Get("filter"), keys)
	if err != nil {
		s.badRequest(w, "%v", err)
		return
	}
	var kept []item
	for _, it := range items {
		ok := true
		for _, p := range preds {
			ok = ok && p.match(it)
		}
		if ok {
			kept = append(kept, it)
		}
	}
	sortBy := strings.TrimSpace(q.Get("sort_by"))
	field, dir, _ := strings.Cut(sortBy, " ")
	desc := strings.TrimSpace(dir) == "desc"
	if d := strings.TrimSpace(dir); d != "" && d != "asc" && d != "desc" {
		s.badRequest(w, "invalid sort_by %q", sortBy)
		return
	}
	switch field {
	case "", "id":
		sort.SliceStable(kept, func(i, j int) bool { return kept[i].id < kept[j].id })
	case "created_at":
		sort.SliceStable(kept, func(i, j int) bool { return kept[i].created.Before(kept[j].created) })
	case "name", "display_name":
		sort.SliceStable(kept, func(i, j int) bool { return kept[i].fields[field] < kept[j].fields[field] })
	default:
		s.badRequest(w, "invalid sorting field %q", field)
		return
	}
	if desc {
		for i, j := 0, len(kept)-1; i < j; i, j = i+1, j-1 {
			kept[i], kept[j] = kept[j], kept[i]
		}
	}
	size := 20
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.badRequest(w, "invalid page size %q", v)
			return
		}
		if n > 0 {
			size = min(n, 200)
		}
	}
	bound := sortBy + "\x00" + q.Get("filter")
	offset := 0
	if tok := q.Get("page_token"); tok != "" {
		b, err := base64.StdEncoding.DecodeString(tok)
		o, rest, ok := strings.Cut(string(b), "\x01")
		n, aerr := strconv.Atoi(o)
		if err != nil || !ok || aerr != nil || rest != bound {
			s.badRequest(w, "invalid page token: it does not match the request's sort_by and filter")
			return
		}
		offset = n
	}
	out := map[string]any{}
	end := min(offset+size, len(kept))
	if offset < end {
		list := make([]any, 0, end-offset)
		for _, it := range kept[offset:end] {
			list = append(list, it.json)
		}
		out[key] = list
	}
	if len(kept) > 0 {
		out["total_size"] = len(kept)
	}
	if end < len(kept) {
		out["next_page_token"] = base64.StdEncoding.EncodeToString([]byte(strconv.Itoa(end) + "\x01" + bound))
	}
	writeJSON(w, out)
}

// allowed says whether the caller may use a namespace.
func (s *Server) allowed(ns string) bool {
	if !s.opts.MultiUser || len(s.opts.Namespaces) == 0 {
		return true
	}
	for _, n := range s.opts.Namespaces {
		if n == ns {
			return true
		}
	}
	return false
}

// forbidden is the 403 of a denied SubjectAccessReview.
func (s *Server) forbidden(w http.ResponseWriter, verb, resource, ns string) {
	msg := fmt.Sprintf("User 'fake-user' is not authorized with reason: (request: &ResourceAttributes{Namespace:%s,Verb:%s,Group:pipelines.kubeflow.org,Resource:%s})", ns, verb, resource)
	s.rpcError(w, http.StatusForbidden, 7, msg, "PermissionDenied: "+msg)
}
