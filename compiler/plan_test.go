package compiler

import (
	"strings"
	"testing"

	"github.com/mlpipe/mlpipe/kfpir"
)

// An IR whose components call the next twice, 40 levels deep, would unfold
// into 2^40 tasks: the planner refuses it before expanding.
func TestPlanRefusesFanOutBomb(t *testing.T) {
	ir, err := kfpir.LoadIR("../kfpir/testdata/fanbomb-40.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := MakePlan(ir, nil); err == nil || !strings.Contains(err.Error(), "unfolds into more than") {
		t.Errorf("MakePlan = %v", err)
	}
}
