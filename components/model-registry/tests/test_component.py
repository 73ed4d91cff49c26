import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from testkit import Task, load_component  # noqa: E402

comp = load_component(__file__)


class ModelRegistryTest(unittest.TestCase):
    def setUp(self):
        d = Task().dir
        self.registry = os.path.join(d, "registry")
        self.model = os.path.join(d, "model.json")
        with open(self.model, "w") as f:
            json.dump({"weights": [1]}, f)

    def publish(self, *args):
        t = Task(parameters=["version", "location"], inputs={"model": [{"uri": self.model, "metadata": {"framework": "python"}}]})
        comp.main(["--executor-input", t.json(), "--model", self.model, "--registry", self.registry, "--name", "clf"] + list(args))
        return t.executor_output()["parameterValues"]

    def test_versions_and_metadata(self):
        self.assertEqual(self.publish()["version"], "v1")
        out = self.publish()
        self.assertEqual(out["version"], "v2")
        with open(os.path.join(out["location"], "metadata.json")) as f:
            md = json.load(f)
        self.assertTrue(md["digest"].startswith("sha256:"))
        self.assertEqual(md["metadata"], {"framework": "python"})
        self.assertTrue(os.path.exists(os.path.join(out["location"], "model.json")))

    def test_refuses_to_overwrite(self):
        self.publish("--version", "prod-1")
        with self.assertRaises(SystemExit):
            self.publish("--version", "prod-1")

    def test_rejects_bad_names(self):
        for args in (["--version", "../x"],):
            with self.assertRaises(SystemExit):
                self.publish(*args)
        self.registry = "minio://bucket/registry"
        with self.assertRaises(SystemExit):
            self.publish()


if __name__ == "__main__":
    unittest.main()
