import json
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from testkit import Task, load_component  # noqa: E402

comp = load_component(__file__)


def dataset(n=300, seed=1):
    rng = random.Random(seed)
    path = os.path.join(Task().dir, "train.csv")
    with open(path, "w") as f:
        f.write("f0,f1,label\n")
        for _ in range(n):
            a, b = rng.gauss(0, 1), rng.gauss(0, 1)
            f.write("%f,%f,%d\n" % (a, b, 1 if 2 * a - b > 0 else 0))
    return path


class TrainerTest(unittest.TestCase):
    def train(self, *args, path=None):
        t = Task(outputs=["model"], parameters=["training_seconds", "train_accuracy"])
        comp.main(["--executor-input", t.json(), "--train", path or dataset()] + list(args))
        return t

    def test_learns_a_separable_problem(self):
        t = self.train("--learning-rate", "0.5", "--epochs", "60")
        out = t.executor_output()
        self.assertGreater(out["parameterValues"]["train_accuracy"], 0.9)
        with open(t.out_path("model")) as f:
            model = json.load(f)
        self.assertEqual(model["features"], ["f0", "f1"])
        self.assertGreater(model["weights"][0], 0)
        self.assertLess(model["weights"][1], 0)
        md = out["artifacts"]["model"]["artifacts"][0]["metadata"]
        self.assertIn(md["framework"].split()[0], ("python", "numpy", "torch"))
        self.assertEqual(md["learning_rate"], 0.5)

    def test_use_gpu_without_cuda_falls_back_to_cpu(self):
        t = self.train("--learning-rate", "0.1", "--epochs", "5", "--use-gpu", "true")
        md = t.executor_output()["artifacts"]["model"]["artifacts"][0]["metadata"]
        try:
            import torch
            cuda = torch.cuda.is_available()
        except ImportError:
            cuda = False
        self.assertEqual(md["device"].startswith("cuda"), cuda)

    def test_python_and_numpy_agree(self):
        rng = random.Random(3)
        xs = [[rng.gauss(0, 1), rng.gauss(0, 1)] for _ in range(50)]
        ys = [int(x[0] > x[1]) for x in xs]
        w, b = comp.train_python(xs, ys, 0.3, 20)
        try:
            wn, bn = comp.train_numpy(xs, ys, 0.3, 20)
        except ImportError:
            self.skipTest("numpy not installed")
        for a, c in zip(w + [b], wn + [bn]):
            self.assertAlmostEqual(a, c, places=6)

    def test_rejects_bad_inputs(self):
        for args in (["--learning-rate", "0"], ["--learning-rate", "0.1", "--epochs", "0"]):
            with self.assertRaises(SystemExit):
                self.train(*args)
        with self.assertRaises(SystemExit):
            self.train("--learning-rate", "0.1", path="/no/such.csv")


if __name__ == "__main__":
    unittest.main()
