import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from testkit import Task, load_component  # noqa: E402

comp = load_component(__file__)


def write(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)
    return path


class EvaluatorTest(unittest.TestCase):
    def setUp(self):
        d = Task().dir
        self.test_csv = os.path.join(d, "test.csv")
        with open(self.test_csv, "w") as f:
            f.write("f0,label\n" + "".join("%d,%d\n" % (v, int(v > 0)) for v in range(-10, 11) if v))
        good = write(os.path.join(d, "good.json"), {"features": ["f0"], "weights": [1.0], "bias": 0.0})
        bad = write(os.path.join(d, "bad.json"), {"features": ["f0"], "weights": [-1.0], "bias": 0.0})
        self.models = [
            {"name": "models", "uri": bad, "metadata": {"learning_rate": 0.1}},
            {"name": "models", "uri": good, "metadata": {"learning_rate": 0.3}},
        ]

    def run_eval(self, models):
        t = Task(outputs=["metrics", "classification_metrics", "best_model"], parameters=["best_accuracy", "best_index"],
                 inputs={"models": models})
        comp.main(["--executor-input", t.json(), "--test", self.test_csv])
        return t

    def test_picks_the_best_model(self):
        t = self.run_eval(self.models)
        out = t.executor_output()
        self.assertEqual(out["parameterValues"], {"best_accuracy": 1.0, "best_index": 1})
        metrics = out["artifacts"]["metrics"]["artifacts"][0]["metadata"]
        self.assertEqual(metrics["accuracy_model_0"], 0.0)
        cm = out["artifacts"]["classification_metrics"]["artifacts"][0]["metadata"]["confusionMatrix"]
        self.assertEqual(cm["rows"], [{"row": [10, 0]}, {"row": [0, 10]}])
        with open(t.out_path("best_model")) as f:
            self.assertEqual(json.load(f)["weights"], [1.0])
        best_md = out["artifacts"]["best_model"]["artifacts"][0]["metadata"]
        self.assertEqual(best_md["learning_rate"], 0.3)

    def test_uses_custom_path_and_object_store_paths(self):
        m = dict(self.models[1], uri="minio://bucket/k/model", customPath=self.models[1]["uri"])
        self.assertEqual(self.run_eval([m]).executor_output()["parameterValues"]["best_accuracy"], 1.0)
        self.assertEqual(comp.artifact_path({"uri": "s3://b/x"}), "/s3/b/x")

    def test_rejects_mismatched_features(self):
        d = Task().dir
        other = write(os.path.join(d, "o.json"), {"features": ["z"], "weights": [1.0], "bias": 0.0})
        with self.assertRaises(SystemExit):
            self.run_eval([{"uri": other}])
        with self.assertRaises(SystemExit):
            self.run_eval([])


if __name__ == "__main__":
    unittest.main()
