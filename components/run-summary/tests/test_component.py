import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from testkit import Task, load_component  # noqa: E402

comp = load_component(__file__)


class RunSummaryTest(unittest.TestCase):
    def summarize(self, params):
        t = Task(outputs=["summary"], params=params)
        comp.main(["--executor-input", t.json()])
        with open(t.out_path("summary")) as f:
            return f.read(), t.executor_output()

    def test_failed_run(self):
        text, out = self.summarize({"status": {"state": "FAILED", "error": {"code": 1, "message": "train failed"}}})
        self.assertIn("**FAILED**", text)
        self.assertIn("train failed", text)
        self.assertIn("not reached", text)
        self.assertEqual(out["artifacts"]["summary"]["artifacts"][0]["metadata"]["state"], "FAILED")

    def test_complete_run(self):
        text, _ = self.summarize({"status": {"state": "COMPLETE", "error": {}}, "best_accuracy": 0.93})
        self.assertIn("**COMPLETE**", text)
        self.assertIn("0.9300", text)


if __name__ == "__main__":
    unittest.main()
