"""Test helpers for the example components' unit tests: load a
component.py as a module and give it an executor input in a temporary
directory, as mlpipe (or KFP) would."""
import importlib.util
import json
import os
import tempfile


def load_component(test_file):
    here = os.path.dirname(os.path.abspath(test_file))
    path = os.path.join(os.path.dirname(here), "component.py")
    spec = importlib.util.spec_from_file_location("component", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Task:
    """A task directory with an executor input for declared outputs."""

    def __init__(self, outputs=(), parameters=(), inputs=None, params=None):
        self.dir = tempfile.mkdtemp(prefix="mlpipe-component-test-")
        self.ei = {
            "inputs": {"parameterValues": dict(params or {}), "artifacts": {}},
            "outputs": {"parameters": {p: {"outputFile": os.path.join(self.dir, "param." + p)} for p in parameters},
                        "artifacts": {}, "outputFile": os.path.join(self.dir, "executor_output.json")},
        }
        for name in outputs:
            self.ei["outputs"]["artifacts"][name] = {"artifacts": [{"name": name, "uri": os.path.join(self.dir, "out", name), "metadata": {}}]}
        for name, arts in (inputs or {}).items():
            self.ei["inputs"]["artifacts"][name] = {"artifacts": arts}

    def json(self):
        return json.dumps(self.ei)

    def out_path(self, name):
        return self.ei["outputs"]["artifacts"][name]["artifacts"][0]["uri"]

    def executor_output(self):
        with open(self.ei["outputs"]["outputFile"]) as f:
            return json.load(f)
