package platform

import "testing"

func TestPVCImages(t *testing.T) {
	for image, want := range map[string][2]bool{
		"argostub/createpvc":                    {true, false},
		"argostub/createpvc:latest":             {true, false},
		"docker.io/argostub/createpvc:1.0":      {true, false},
		"argostub/createpvc@sha256:abc":         {true, false},
		"argostub/deletepvc":                    {false, true},
		"index.docker.io/argostub/deletepvc:v2": {false, true},
		"ghcr.io/argostub/createpvc":            {false, false},
		"argostub/createpvc-extra":              {false, false},
		"python:3.11":                           {false, false},
		"localhost:5000/argostub/createpvc":     {false, false},
		"":                                      {false, false},
	} {
		if got := [2]bool{IsCreatePVC(image), IsDeletePVC(image)}; got != want {
			t.Errorf("IsCreatePVC, IsDeletePVC(%q) = %v, want %v", image, got, want)
		}
	}
}

func TestCreatePVCName(t *testing.T) {
	tests := []struct {
		name   string
		inputs map[string]any
		wf     string
		want   string
		err    string
	}{
		{name: "name", inputs: map[string]any{"pvc_name": "data", "size": "5Gi"}, wf: "wf", want: "data"},
		{name: "suffix", inputs: map[string]any{"pvc_name_suffix": "my-pvc"}, wf: "run-abc", want: "run-abc-my-pvc"},
		{name: "suffix with dash", inputs: map[string]any{"pvc_name_suffix": "-my-pvc", "pvc_name": ""}, wf: "run-abc", want: "run-abc-my-pvc"},
		{name: "null name", inputs: map[string]any{"pvc_name": nil, "pvc_name_suffix": "x"}, wf: "w", want: "w-x"},
		{name: "both", inputs: map[string]any{"pvc_name": "a", "pvc_name_suffix": "b"}, wf: "w",
			err: "createpvc: set only one of pvc_name and pvc_name_suffix"},
		{name: "neither", inputs: map[string]any{}, wf: "w",
			err: "createpvc: one of pvc_name and pvc_name_suffix is required"},
		{name: "not a string", inputs: map[string]any{"pvc_name": 3.0}, wf: "w",
			err: "input pvc_name must be a string, not a number"},
		{name: "invalid", inputs: map[string]any{"pvc_name": "Data_1"}, wf: "w",
			err: `createpvc: PVC name "Data_1" is not a DNS-1123 subdomain: only lower-case letters, digits, '-' and '.' are allowed`},
		{name: "traversal", inputs: map[string]any{"pvc_name": "../etc"}, wf: "w",
			err: `createpvc: PVC name "../etc" is not a DNS-1123 subdomain: empty part between dots`},
		{name: "suffix without workflow", inputs: map[string]any{"pvc_name_suffix": "x"},
			err: "createpvc: pvc_name_suffix needs a workflow name"},
	}
	for _, tt := range tests {
		got, err := CreatePVCName(tt.inputs, tt.wf)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%s: got %q, %v; want error %s", tt.name, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	if got, err := DeletePVCName(map[string]any{"pvc_name": "data"}); err != nil || got != "data" {
		t.Errorf("DeletePVCName = %q, %v", got, err)
	}
	if _, err := DeletePVCName(map[string]any{}); err == nil {
		t.Error("DeletePVCName of nothing: no error")
	}
}

func TestValidPVCName(t *testing.T) {
	long := ""
	for range 254 {
		long += "a"
	}
	for name, ok := range map[string]bool{
		"a": true, "data-1": true, "a.b.c": true, "0abc": true,
		"": false, "-a": false, "a-": false, "a..b": false, ".a": false, "a/b": false,
		"A": false, "a_b": false, "..": false, ".": false, long: false, long[:253]: true,
	} {
		if err := ValidPVCName(name); (err == nil) != ok {
			t.Errorf("ValidPVCName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}
