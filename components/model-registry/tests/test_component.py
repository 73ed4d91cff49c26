import contextlib
import io
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from testkit import Task, load_component  # noqa: E402

comp = load_component(__file__)

CREATED = "2026-11-27T12:01:02Z"
RUN = "20261127-120102-5f86cc"


class ModelRegistryTest(unittest.TestCase):
    def setUp(self):
        old = os.environ.get("MLPIPE_RUN_ID")
        os.environ["MLPIPE_RUN_ID"] = RUN
        self.addCleanup(lambda: os.environ.pop("MLPIPE_RUN_ID", None) if old is None else os.environ.update(MLPIPE_RUN_ID=old))
        d = Task().dir
        self.root = os.path.join(d, "artifacts")
        self.model = os.path.join(d, "model.json")
        with open(self.model, "w") as f:
            json.dump({"weights": [1]}, f)

    def publish(self, *args):
        self.task = Task(outputs=["registered_model"], parameters=["version", "location"],
                         inputs={"model": [{"uri": self.model, "metadata": {"framework": "python", "test_accuracy": 0.9}}]})
        comp.main(["--executor-input", self.task.json(), "--model", self.model, "--name", "clf",
                   "--pipeline-root", self.root, "--run", RUN, "--created", CREATED] + list(args))
        return self.task.executor_output()

    def test_publishes_under_the_pipeline_root(self):
        out = self.publish()
        want = self.root + "/registry/clf/v20261127-120102-5f86cc"
        self.assertEqual(out["parameterValues"], {"version": "v20261127-120102-5f86cc", "location": want})
        art = out["artifacts"]["registered_model"]["artifacts"][0]
        self.assertEqual(art["uri"], want)
        self.assertEqual(art["metadata"]["version"], "v20261127-120102-5f86cc")
        self.assertEqual(art["metadata"]["framework"], "python")
        # The content is in the declared output path; the runner stores it
        # at the new URI.
        d = self.task.out_path("registered_model")
        with open(os.path.join(d, "metadata.json")) as f:
            md = json.load(f)
        self.assertTrue(md["digest"].startswith("sha256:"))
        self.assertEqual(md["digest"], art["metadata"]["digest"])
        self.assertEqual((md["run"], md["published_at"], md["source"]), (RUN, CREATED, self.model))
        with open(os.path.join(d, "model.json")) as f:
            self.assertEqual(json.load(f), {"weights": [1]})
        self.assertFalse(os.path.exists(want), "the component must not write into the store itself")

    def test_outside_mlpipe_it_writes_at_the_new_uri(self):
        # KFP's launcher and kfp.local read a redirected artifact from the
        # local path of its new URI.
        del os.environ["MLPIPE_RUN_ID"]
        out = self.publish("--version", "prod-1")
        want = self.root + "/registry/clf/prod-1"
        self.assertEqual(out["artifacts"]["registered_model"]["artifacts"][0]["uri"], want)
        self.assertEqual(sorted(os.listdir(want)), ["metadata.json", "model.json"])
        with self.assertRaises(SystemExit):
            self.publish("--version", "prod-1")

    def test_a_directory_model(self):
        os.remove(self.model)
        os.makedirs(os.path.join(self.model, "weights"))
        for name, data in (("config.json", "{}"), ("weights/w.bin", "0123")):
            with open(os.path.join(self.model, name), "w") as f:
                f.write(data)
        out = self.publish()
        d = self.task.out_path("registered_model")
        self.assertEqual(sorted(os.listdir(os.path.join(d, "model"))), ["config.json", "weights"])
        digest = out["artifacts"]["registered_model"]["artifacts"][0]["metadata"]["digest"]
        self.assertTrue(digest.startswith("sha256:"))
        with open(os.path.join(self.model, "weights", "w.bin"), "w") as f:
            f.write("4567")
        self.assertNotEqual(comp.sha256_of(self.model), digest)

    def test_the_same_run_publishes_the_same_version(self):
        first = self.publish()["parameterValues"]["version"]
        self.assertEqual(self.publish()["parameterValues"]["version"], first)

    def test_version_without_a_run_id(self):
        comp_version = comp.default_version("{{$.pipeline_job_uuid}}", CREATED)
        self.assertEqual(comp_version, "v20261127-120102")

    def test_explicit_version_and_registry(self):
        out = self.publish("--registry", "minio://mlpipeline/models/", "--version", "prod-1")
        self.assertEqual(out["parameterValues"]["location"], "minio://mlpipeline/models/clf/prod-1")

    def test_refuses_a_version_it_can_see(self):
        os.makedirs(os.path.join(self.root, "registry", "clf", "prod-1"))
        self.assertFails("already exists", "--version", "prod-1")

    def test_rejects_bad_input(self):
        for args, why in ((["--version", "../x"], "version"), (["--registry", "relative/dir"], "absolute path"),
                          (["--registry", "/srv/../etc"], ".."), (["--pipeline-root", "{{$.pipeline_root}}"], "pipeline root is unknown"),
                          (["--name", "a b"], "model name")):
            with self.subTest(args=args):
                self.assertFails(why, *args)
        os.remove(self.model)
        self.assertFails("does not exist")

    def assertFails(self, why, *args):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), self.assertRaises(SystemExit) as cm:
            self.publish(*args)
        self.assertEqual(cm.exception.code, 2)
        self.assertIn(why, err.getvalue())


if __name__ == "__main__":
    unittest.main()
