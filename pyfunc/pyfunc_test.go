package pyfunc

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The SDK's scripts, as KFP 2.7 and 2.13 compile them (component_factory.py).
const (
	ensurePip = "\nif ! [ -x \"$(command -v pip)\" ]; then\n    python3 -m ensurepip || python3 -m ensurepip --user || apt-get install python3-pip\nfi\n\n"
	sdkPlain  = ensurePip + "PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-warn-script-location 'kfp==2.7.0' '--no-deps' 'typing-extensions>=3.7.4,<5; python_version<\"3.9\"' && \"$0\" \"$@\"\n"
	sdkPkgs   = ensurePip + "PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-warn-script-location 'kfp==2.7.0' '--no-deps' 'typing-extensions>=3.7.4,<5; python_version<\"3.9\"'  &&  python3 -m pip install --quiet --no-warn-script-location 'pandas==2.1.0' 'scikit-learn' && \"$0\" \"$@\"\n"
	sdkIndex  = ensurePip + "PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-warn-script-location --index-url https://pypi.example.com/simple --trusted-host https://pypi.example.com/simple 'kfp==2.7.0' '--no-deps' 'typing-extensions>=3.7.4,<5; python_version<\"3.9\"'  &&  python3 -m pip install --quiet --no-warn-script-location --index-url https://pypi.example.com/simple --trusted-host https://pypi.example.com/simple 'mlpipe-testpkg' && \"$0\" \"$@\"\n"
	sdkVenv   = ensurePip + "export PIP_DISABLE_PIP_VERSION_CHECK=1\ntmp=$(mktemp -d)\npython3 -m venv \"$tmp/venv\" --system-site-packages\n. \"$tmp/venv/bin/activate\"\n python3 -m pip install --quiet --no-warn-script-location 'kfp==2.13.0' '--no-deps' 'typing-extensions>=3.7.4,<5; python_version<\"3.9\"' && \"$0\" \"$@\"\n"
	program   = "program_path=$(mktemp -d)\n\nprintf \"%s\" \"$0\" > \"$program_path/ephemeral_component.py\"\n_KFP_RUNTIME=true python3 -m kfp.dsl.executor_main                         --component_module_path                         \"$program_path/ephemeral_component.py\"                         \"$@\"\n"
	source    = "\nimport kfp\nfrom kfp import dsl\nfrom kfp.dsl import *\nfrom typing import *\n\ndef add(a: int, b: int) -> int:\n    return a + b\n\n"
)

func sdkCommand(script string) []string {
	return []string{"sh", "-c", script, "sh", "-ec", program, source}
}

var sdkArgs = []string{"--executor_input", "{{$}}", "--function_to_execute", "add"}

const typingExt = `typing-extensions>=3.7.4,<5; python_version<"3.9"`

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		command []string
		args    []string
		want    *Component
		reason  string // part of the reason, when want is nil
	}{
		{name: "kfp only", command: sdkCommand(sdkPlain), args: sdkArgs, want: &Component{Installs: []Install{
			{Requirements: []string{"kfp==2.7.0", typingExt}, Options: []string{"--no-deps"}},
		}, Skippable: true}},
		{name: "packages_to_install", command: sdkCommand(sdkPkgs), args: sdkArgs, want: &Component{Installs: []Install{
			{Requirements: []string{"kfp==2.7.0", typingExt}, Options: []string{"--no-deps"}},
			{Requirements: []string{"pandas==2.1.0", "scikit-learn"}},
		}, Skippable: true}},
		{name: "pip_index_urls", command: sdkCommand(sdkIndex), args: sdkArgs, want: &Component{Installs: []Install{
			{Requirements: []string{"kfp==2.7.0", typingExt}, Options: []string{"--index-url=https://pypi.example.com/simple", "--trusted-host=https://pypi.example.com/simple", "--no-deps"}},
			{Requirements: []string{"mlpipe-testpkg"}, Options: []string{"--index-url=https://pypi.example.com/simple", "--trusted-host=https://pypi.example.com/simple"}},
		}, Skippable: true}},
		{name: "use_venv", command: sdkCommand(sdkVenv), args: sdkArgs, want: &Component{Installs: []Install{
			{Requirements: []string{"kfp==2.13.0", typingExt}, Options: []string{"--no-deps"}},
		}, Skippable: true}},
		{name: "program in args", command: []string{"sh", "-c", sdkPlain}, args: append([]string{"sh", "-ec", program, source}, sdkArgs...), want: &Component{Installs: []Install{
			{Requirements: []string{"kfp==2.7.0", typingExt}, Options: []string{"--no-deps"}},
		}, Skippable: true}},
		{name: "more than the SDK writes", command: sdkCommand(strings.Replace(sdkPlain, "PIP_DISABLE", "cd /work\nPIP_DISABLE", 1)), args: sdkArgs, want: &Component{Installs: []Install{
			{Requirements: []string{"kfp==2.7.0", typingExt}, Options: []string{"--no-deps"}},
		}}},
		{name: "plain container", command: []string{"python3", "train.py"}, reason: "not `sh -c"},
		{name: "no executor_main", command: []string{"sh", "-c", sdkPlain, "sh", "-ec", "echo hi"}, reason: "executor_main"},
		{name: "not going on", command: sdkCommand(strings.ReplaceAll(sdkPlain, `"$0" "$@"`, "true")), reason: `"$0" "$@"`},
		{name: "variable requirement", command: sdkCommand(strings.ReplaceAll(sdkPlain, "'kfp==2.7.0'", "\"kfp==$V\"")), reason: "not a literal"},
		{name: "requirements file", command: sdkCommand(strings.ReplaceAll(sdkPlain, "'kfp==2.7.0'", "-r req.txt")), reason: "pip option -r"},
		{name: "nothing installed", command: sdkCommand(ensurePip + "\"$0\" \"$@\"\n"), reason: "installs nothing"},
		{name: "broken shell", command: sdkCommand("if then \"$0\" \"$@\""), reason: "not a shell script"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := Parse(tt.command, tt.args)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("Parse (-want +got):\n%s\nreason: %s", diff, reason)
			}
			if tt.want == nil && !strings.Contains(reason, tt.reason) {
				t.Fatalf("reason %q does not say %q", reason, tt.reason)
			}
		})
	}
}

func TestComponentAccessors(t *testing.T) {
	c, _ := Parse(sdkCommand(sdkIndex), sdkArgs)
	if c == nil {
		t.Fatal("not recognised")
	}
	if got := c.KFPVersion(); got != "2.7.0" {
		t.Errorf("KFPVersion = %q", got)
	}
	if diff := cmp.Diff([]string{"kfp==2.7.0", typingExt, "mlpipe-testpkg"}, c.Packages()); diff != "" {
		t.Errorf("Packages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"https://pypi.example.com/simple", "https://pypi.example.com/simple"}, c.Indexes()); diff != "" {
		t.Errorf("Indexes (-want +got):\n%s", diff)
	}
	want := `python3 -m pip install --no-warn-script-location '--index-url=https://pypi.example.com/simple' '--trusted-host=https://pypi.example.com/simple' mlpipe-testpkg`
	if got := c.Installs[1].ShellCommand("python3"); got != want {
		t.Errorf("ShellCommand = %s\nwant          %s", got, want)
	}
	// The key changes with any requirement, and not with output options.
	quiet, _ := Parse(sdkCommand(strings.ReplaceAll(sdkIndex, "--quiet ", "")), sdkArgs)
	if quiet.Hash() != c.Hash() {
		t.Error("dropping --quiet changed the key")
	}
	other, _ := Parse(sdkCommand(strings.ReplaceAll(sdkIndex, "'mlpipe-testpkg'", "'mlpipe-testpkg==2'")), sdkArgs)
	if other.Hash() == c.Hash() {
		t.Error("a different requirement kept the key")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{sdkPlain, sdkPkgs, sdkIndex, sdkVenv, "'", "$("} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script string) {
		c, reason := Parse(sdkCommand(script), sdkArgs)
		if (c == nil) == (reason == "") {
			t.Fatalf("Parse returned %v and reason %q", c, reason)
		}
		if c != nil {
			_ = c.Key()
		}
	})
}

func TestWithoutPrologue(t *testing.T) {
	// What `sh -c SCRIPT A B...` goes on with after "$0" "$@".
	cmd, args := WithoutPrologue(sdkCommand(sdkPlain), []string{"--executor_input", "{}", "--function_to_execute", "add"})
	if diff := cmp.Diff([]string{"sh", "-ec", program, source}, cmd); diff != "" {
		t.Errorf("command (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"--executor_input", "{}", "--function_to_execute", "add"}, args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	// The program in args.
	cmd, args = WithoutPrologue([]string{"sh", "-c", sdkPlain}, []string{"sh", "-ec", program, source, "--executor_input", "{}"})
	if diff := cmp.Diff([]string{"sh"}, cmd); diff != "" {
		t.Errorf("command (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"-ec", program, source, "--executor_input", "{}"}, args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
}
