package pywheel

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The expected strings are those of pipelines compiled by the kfp 2.7 SDK.
func TestComponentCommand(t *testing.T) {
	launcher := "program_path=$(mktemp -d)\n\nprintf \"%s\" \"$0\" > \"$program_path/ephemeral_component.py\"\n" +
		"_KFP_RUNTIME=true python3 -m kfp.dsl.executor_main                         --component_module_path" +
		"                         \"$program_path/ephemeral_component.py\"                         \"$@\"\n"
	source := "\nimport kfp\nfrom kfp import dsl\nfrom kfp.dsl import *\nfrom typing import *\n\n" +
		"def add(a: int, b: int) -> int:\n    return a + b\n\n"
	prologue := func(install string) string {
		return "\nif ! [ -x \"$(command -v pip)\" ]; then\n    python3 -m ensurepip || python3 -m ensurepip" +
			" --user || apt-get install python3-pip\nfi\n\nPIP_DISABLE_PIP_VERSION_CHECK=1 " + install + " && \"$0\" \"$@\"\n"
	}
	const pip = "python3 -m pip install --quiet --no-warn-script-location "
	const kfp = `'kfp==2.7.0' '--no-deps' 'typing-extensions>=3.7.4,<5; python_version<"3.9"'`
	fn := "def add(a: int, b: int) -> int:\n    return a + b\n"
	for _, tc := range []struct {
		desc string
		c    Component
		want []string
	}{
		{"no install", Component{FuncSource: fn, Function: "add"},
			[]string{"sh", "-ec", launcher, source}},
		{"kfp only", Component{FuncSource: fn, Function: "add", KFPVersion: "2.7.0"},
			[]string{"sh", "-c", prologue(pip + kfp), "sh", "-ec", launcher, source}},
		{"kfp and packages", Component{FuncSource: fn, Function: "add", KFPVersion: "2.7.0", Packages: []string{"pandas==2.0", "it's"}},
			[]string{"sh", "-c", prologue(pip + kfp + "  &&  " + pip + `'pandas==2.0' "it's"`), "sh", "-ec", launcher, source}},
		{"index urls", Component{FuncSource: fn, Function: "add", Packages: []string{"x"}, PipIndexURLs: []string{"https://a/simple", "https://b/simple"}},
			[]string{"sh", "-c", prologue(pip + "--index-url https://a/simple --trusted-host https://a/simple " +
				"--extra-index-url https://b/simple --trusted-host https://b/simple 'x'"), "sh", "-ec", launcher, source}},
		{"trusted hosts", Component{FuncSource: fn, Function: "add", Packages: []string{"x"}, PipIndexURLs: []string{"http://127.0.0.1:8080/simple"}, PipTrustedHosts: []string{"127.0.0.1"}},
			[]string{"sh", "-c", prologue(pip + "--index-url http://127.0.0.1:8080/simple --trusted-host 127.0.0.1 'x'"), "sh", "-ec", launcher, source}},
	} {
		if diff := cmp.Diff(tc.want, tc.c.Command()); diff != "" {
			t.Errorf("%s: Command (-want +got):\n%s", tc.desc, diff)
		}
		if diff := cmp.Diff([]string{"--executor_input", "{{$}}", "--function_to_execute", "add"}, tc.c.Args()); diff != "" {
			t.Errorf("%s: Args (-want +got):\n%s", tc.desc, diff)
		}
	}
}
