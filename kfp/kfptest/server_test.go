package kfptest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mlpipe/mlpipe/kfp/kfptest"
)

// call sends a raw request to the fake and decodes a JSON answer.
func call(t *testing.T, method, u, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

const spec = `{"pipelineInfo":{"name":"p"},"root":{"dag":{"tasks":{}},"inputDefinitions":{"parameters":{"n":{"parameterType":"NUMBER_INTEGER"}}}},"schemaVersion":"2.1.0"}`

func TestStrictRequests(t *testing.T) {
	t.Parallel()
	srv := kfptest.New(t, kfptest.Options{})
	api := srv.URL() + "/apis/v2beta1"
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantCode   float64
	}{
		{"wrapped run body", "POST", "/runs", `{"run":{"display_name":"x","pipeline_spec":` + spec + `}}`, 400, 3},
		{"camelCase field is unknown to the fake", "POST", "/runs", `{"displayName":"x"}`, 400, 3},
		{"server-owned field", "POST", "/runs", `{"display_name":"x","run_id":"r","pipeline_spec":` + spec + `}`, 400, 3},
		{"empty run name is a 500", "POST", "/runs", `{"pipeline_spec":` + spec + `}`, 500, 13},
		{"two pipeline sources", "POST", "/runs", `{"display_name":"x","pipeline_spec":` + spec + `,"pipeline_version_reference":{"pipeline_id":"p"}}`, 400, 3},
		{"no pipeline source", "POST", "/runs", `{"display_name":"x"}`, 400, 3},
		{"plugins_output", "POST", "/runs", `{"display_name":"x","plugins_output":{},"pipeline_spec":` + spec + `}`, 400, 3},
		{"bad schema version", "POST", "/runs", `{"display_name":"x","pipeline_spec":{"pipelineInfo":{"name":"p"},"root":{},"schemaVersion":"2.0.0"}}`, 500, 13},
		{"unknown spec field", "POST", "/runs", `{"display_name":"x","pipeline_spec":{"pipelineInfo":{"name":"p"},"root":{},"schemaVersion":"2.1.0","extra":1}}`, 500, 13},
		{"extra parameter", "POST", "/runs", `{"display_name":"x","pipeline_spec":` + spec + `,"runtime_config":{"parameters":{"n":1,"m":2}}}`, 400, 3},
		{"mistyped parameter", "POST", "/runs", `{"display_name":"x","pipeline_spec":` + spec + `,"runtime_config":{"parameters":{"n":"1"}}}`, 400, 3},
		{"missing parameter", "POST", "/runs", `{"display_name":"x","pipeline_spec":` + spec + `}`, 400, 3},
		{"valid run", "POST", "/runs", `{"display_name":"x","pipeline_spec":` + spec + `,"runtime_config":{"parameters":{"n":1}}}`, 200, 0},
		{"empty experiment name", "POST", "/experiments", `{"description":"d"}`, 500, 13},
		{"unknown route", "GET", "/nope", "", 404, 5},
		{"wrong method", "DELETE", "/runs", "", 501, 12},
		{"unknown filter key", "GET", "/experiments?filter=" + url.QueryEscape(`{"predicates":[{"key":"colour","operation":"EQUALS","string_value":"x"}]}`), "", 400, 3},
		{"negative page size", "GET", "/experiments?page_size=-1", "", 400, 3},
		{"unknown query parameter", "GET", "/runs?experimentid=x", "", 400, 3},
	}
	for _, tt := range tests {
		status, body := call(t, tt.method, api+tt.path, tt.body)
		if status != tt.wantStatus {
			t.Errorf("%s: status %d (%v), want %d", tt.name, status, body, tt.wantStatus)
			continue
		}
		if tt.wantCode != 0 && body["code"] != tt.wantCode {
			t.Errorf("%s: code %v, want %v", tt.name, body["code"], tt.wantCode)
		}
		if tt.wantStatus == 200 {
			if _, ok := body["state"]; ok {
				t.Errorf("%s: a new run has a state field: %v", tt.name, body)
			}
			if body["finished_at"] != "1970-01-01T00:00:00Z" {
				t.Errorf("%s: finished_at %v", tt.name, body["finished_at"])
			}
		}
	}
}

func TestLegacyErrorStyle(t *testing.T) {
	t.Parallel()
	srv := kfptest.New(t, kfptest.Options{ErrorStyle: kfptest.ErrorsLegacy})
	status, body := call(t, "GET", srv.URL()+"/apis/v2beta1/runs/missing", "")
	if status != 404 || body["error"] == nil || body["message"] == nil || body["code"] != float64(5) {
		t.Errorf("legacy 404: %d %v", status, body)
	}
}

func TestAuthAndBasePath(t *testing.T) {
	t.Parallel()
	srv := kfptest.New(t, kfptest.Options{BasePath: "/pipeline", RequireBearer: "tok"})
	if status, _ := call(t, "GET", srv.URL()+"/apis/v2beta1/healthz", ""); status != 200 {
		t.Errorf("healthz needs no auth: %d", status)
	}
	if status, _ := call(t, "GET", srv.RootURL()+"/apis/v2beta1/healthz", ""); status != 404 {
		t.Errorf("healthz without the base path: %d, want 404", status)
	}
	status, body := call(t, "GET", srv.URL()+"/apis/v2beta1/runs", "")
	if status != 401 || body["code"] != float64(16) {
		t.Errorf("no token: %d %v", status, body)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL()+"/apis/v2beta1/runs", nil)
	req.Header.Set("Authorization", "bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("lower-case scheme: %d, want 200", resp.StatusCode)
	}
}

func TestPaginationAndFilters(t *testing.T) {
	t.Parallel()
	srv := kfptest.New(t, kfptest.Options{})
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		srv.AddExperiment(n, "")
	}
	api := srv.URL() + "/apis/v2beta1/experiments"
	var names []string
	tok := ""
	for pages := 0; ; pages++ {
		u := api + "?sort_by=created_at%20desc&page_size=2"
		if tok != "" {
			u += "&page_token=" + url.QueryEscape(tok)
		}
		status, body := call(t, "GET", u, "")
		if status != 200 || pages > 5 {
			t.Fatalf("page %d: %d %v", pages, status, body)
		}
		for _, e := range body["experiments"].([]any) {
			names = append(names, e.(map[string]any)["display_name"].(string))
		}
		next, _ := body["next_page_token"].(string)
		if next == "" {
			break
		}
		tok = next
	}
	if got := strings.Join(names, ""); got != "edcba" {
		t.Errorf("pages gave %q, want edcba", got)
	}
	// A token with another sort is refused.
	_, first := call(t, "GET", api+"?page_size=2", "")
	status, _ := call(t, "GET", api+"?sort_by=created_at&page_size=2&page_token="+url.QueryEscape(first["next_page_token"].(string)), "")
	if status != 400 {
		t.Errorf("token with another sort_by: %d, want 400", status)
	}
	// Python's filter form: a numeric operation and stringValue.
	f := url.QueryEscape(`{"predicates":[{"key":"display_name","operation":1,"stringValue":"c"}]}`)
	_, body := call(t, "GET", api+"?filter="+f, "")
	if l, _ := body["experiments"].([]any); len(l) != 1 || body["total_size"] != float64(1) {
		t.Errorf("filter by stringValue: %v", body)
	}
	// No match: the list and total_size are omitted, as zero values.
	f = url.QueryEscape(`{"predicates":[{"key":"display_name","operation":"EQUALS","string_value":"zz"}]}`)
	_, body = call(t, "GET", api+"?filter="+f, "")
	if len(body) != 0 {
		t.Errorf("empty list answered %v, want {}", body)
	}
}
