package platform

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/mlpipe/mlpipe/kfpir"
)

// FuzzParse feeds arbitrary JSON documents to Parse and the successful
// results to Local: neither may panic. The input is JSON rather than YAML
// to keep each run cheap: the fuzzer minimises every new input, which for
// a slow decoder and a large seed eats the whole fuzzing time.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("testdata/all-fields.yaml"); err == nil {
		if j, err := json.Marshal(yamlDoc(f, string(b))); err == nil {
			f.Add(j)
		}
	}
	for _, s := range []string{
		`{"platforms":{"kubernetes":{"deploymentSpec":{"executors":{"e":{"secretAsEnv":[{"secretName":"s","keyToEnv":1}]}}}}}}`,
		`{"platforms":{"kubernetes":{"deploymentSpec":{"executors":{"e":{"activeDeadlineSeconds":"99999999999999999999"}}}}}}`,
		`{"platforms":{"kubernetes":{"deploymentSpec":{"executors":{"e":{"emptyDirMounts":[{"mountPath":"/x","sizeLimit":"1e30"}]}}}}}}`,
		`{"platforms":{"kubernetes":{"deploymentSpec":{"executors":{"e":{"pvcMount":[{"constant":"../x","mountPath":"/m","subPath":"a/../.."}]}}}}}}`,
		`{"platforms":{"kubernetes":{"deploymentSpec":{"executors":{"e":{"fieldPathAsEnv":[{"name":"A","fieldPath":"metadata.labels['"}]}}}}}}`,
		`{"platforms":{"kubernetes":{"deploymentSpec":{"executors":{"e":{"nodeSelector":{"nodeSelectorJson":{"runtimeValue":{"constantValue":{"intValue":"3"}}}}}}}}}}`,
		`{"platforms":{"kubernetes":{"pipelineConfig":[],"deploymentSpec":{"executors":{"e":null}}}}}`,
		`{"platforms":{"kubernetes":{"deploymentSpec":{"executors":{"e":{"secretAsVolume":[{"secretName":"..","mountPath":"/m","optional":true}],"image_pull_policy":"Never","imagePullPolicy":1.5}}}}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		dec := json.NewDecoder(bytes.NewReader(src))
		dec.UseNumber()
		var doc map[string]any
		if dec.Decode(&doc) != nil {
			return
		}
		s, err := Parse(kfpir.NormalizeNumbers(doc).(map[string]any))
		if err != nil {
			_ = err.Error()
			return
		}
		for _, c := range s.Executors {
			_, _ = c.Local(Task{TaskPath: "t"}, Sources{}, nil, "")
		}
	})
}
