import csv
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from testkit import Task, load_component  # noqa: E402

comp = load_component(__file__)


def read(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


class DataPreprocessorTest(unittest.TestCase):
    def run_with(self, *args):
        t = Task(outputs=["train", "test"], parameters=["train_rows", "test_rows"])
        comp.main(["--executor-input", t.json()] + list(args))
        return t

    def test_synthesizes_and_splits(self):
        t = self.run_with("--rows", "200", "--features", "3", "--test-fraction", "0.25")
        train, test = read(t.out_path("train")), read(t.out_path("test"))
        self.assertEqual(train[0], ["f0", "f1", "f2", "label"])
        self.assertEqual(len(train) - 1, 150)
        self.assertEqual(len(test) - 1, 50)
        out = t.executor_output()
        self.assertEqual(out["parameterValues"], {"train_rows": 150, "test_rows": 50})
        self.assertEqual(out["artifacts"]["train"]["artifacts"][0]["metadata"]["rows"], 150)
        labels = {r[-1] for r in train[1:]}
        self.assertEqual(labels, {"0", "1"})

    def test_same_seed_same_data(self):
        a = read(self.run_with("--rows", "50", "--seed", "7").out_path("train"))
        b = read(self.run_with("--rows", "50", "--seed", "7").out_path("train"))
        self.assertEqual(a, b)

    def test_reads_and_validates_a_csv(self):
        src = os.path.join(Task().dir, "src.csv")
        with open(src, "w") as f:
            f.write("label,a,b\n" + "".join("%d,%d,%d\n" % (i % 2, i, -i) for i in range(20)))
        t = self.run_with("--source", src, "--test-fraction", "0.5")
        self.assertEqual(read(t.out_path("train"))[0], ["a", "b", "label"])
        bad = os.path.join(Task().dir, "bad.csv")
        for content, msg in (("a,b\n1,2\n", "no 'label'"), ("a,label\n1,x\n", "not a number"), ("a,label\n1,2\n", "label must be 0 or 1")):
            with open(bad, "w") as f:
                f.write(content)
            with self.assertRaises(SystemExit) as cm:
                self.run_with("--source", bad)
            self.assertEqual(cm.exception.code, 2, msg)

    def test_rejects_bad_inputs(self):
        for args in (["--rows", "3"], ["--test-fraction", "1.5"], ["--source", "/no/such/file.csv"]):
            with self.assertRaises(SystemExit):
                self.run_with(*args)


if __name__ == "__main__":
    unittest.main()
