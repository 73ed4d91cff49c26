package compiler

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/mlpipe/mlpipe/internal/diag"
	"github.com/mlpipe/mlpipe/kfpir"
	"github.com/mlpipe/mlpipe/platform"
)

// Open loads what a user names to run, plan, benchmark or submit: a
// pipeline.yaml or its directory (compiled) or an IR file (validated). A
// component or anything else is invalid input.
func Open(path string) (*kfpir.IR, error) {
	src := path
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		src = filepath.Join(path, "pipeline.yaml")
	}
	b, err := kfpir.ReadSource(src)
	if err != nil {
		return nil, err
	}
	kind, err := DetectKind(src, b)
	if err != nil {
		return nil, err
	}
	switch kind {
	case KindPipeline:
		p, err := ParsePipeline(src, b)
		if err != nil {
			return nil, err
		}
		spec, err := Compile(p)
		if err != nil {
			return nil, err
		}
		return kfpir.FromSpec(src, spec)
	case KindIR:
		ir, err := kfpir.LoadIRBytes(src, b)
		if err != nil {
			return nil, err
		}
		if err := kfpir.ValidateIR(ir); err != nil {
			return nil, err
		}
		// The kfp-kubernetes document: a wrong shape is the user's input
		// (exit 2), found before anything runs.
		if _, err := platform.Parse(ir.Platform); err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		return ir, nil
	}
	return nil, diag.Diagnostics{{File: path, Msg: fmt.Sprintf("is a %s, not a pipeline or KFP IR", kind)}}
}

// OpenWithParams is Open, then resolves -p NAME=VALUE flags against the
// pipeline's inputs (defaults filled in).
func OpenWithParams(path string, flags []string) (*kfpir.IR, map[string]any, error) {
	ir, err := Open(path)
	if err != nil {
		return nil, nil, err
	}
	text, err := kfpir.ParseParamFlags(flags)
	if err != nil {
		return nil, nil, err
	}
	params, err := kfpir.ResolveParams(ir, text, nil)
	if err != nil {
		return nil, nil, err
	}
	return ir, params, nil
}
