package compiler

import (
	"fmt"
	"os"

	"github.com/mlpipe/mlpipe/internal/diag"
	"github.com/mlpipe/mlpipe/kfpir"
	"github.com/mlpipe/mlpipe/platform"
)

// ValidateFile checks a pipeline.yaml, a component.yaml or an IR file and
// returns every problem found, or nil.
func ValidateFile(path string) error {
	src, err := kfpir.ReadSource(path)
	if err != nil {
		if st, serr := os.Stat(path); serr == nil && st.IsDir() {
			_, err := LoadPipeline(path)
			return err
		}
		return err
	}
	kind, err := DetectKind(path, src)
	if err != nil {
		return err
	}
	switch kind {
	case KindPipeline:
		p, err := ParsePipeline(path, src)
		if err != nil {
			return err
		}
		// Compiling catches what the checks above cannot (it should not).
		if _, err := Compile(p); err != nil {
			return diag.Diagnostics{{File: path, Msg: "compile: " + err.Error()}}
		}
		return nil
	case KindComponent:
		_, err := ParseComponent(path, src)
		return err
	case KindIR:
		ir, err := kfpir.LoadIRBytes(path, src)
		if err != nil {
			return err
		}
		if err := kfpir.ValidateIR(ir); err != nil {
			return err
		}
		if _, err := platform.Parse(ir.Platform); err != nil {
			return err // the caller names the file
		}
		return nil
	}
	return fmt.Errorf("%s: unrecognised file", path)
}
