"""mlpipe stand-in for kfp.dsl.executor_main (python3 -m kfp.dsl.executor_main)."""
import argparse
import importlib.util
import json
import os
import sys

from kfp.dsl import executor


def _load_module(module_path: str):
    module_directory = os.path.dirname(module_path)
    module_name = os.path.splitext(os.path.basename(module_path))[0]
    spec = importlib.util.spec_from_file_location(name=module_name, location=module_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    sys.path.insert(0, module_directory)
    spec.loader.exec_module(module)
    return module


def executor_main(argv=None):
    parser = argparse.ArgumentParser(description='Run a KFP lightweight Python component.')
    parser.add_argument('--component_module_path', type=str, default=None,
                        help='Path to a module containing the KFP component.')
    parser.add_argument('--function_to_execute', type=str, required=True,
                        help='The name of the component function in --component_module_path.')
    parser.add_argument('--executor_input', type=str, required=True,
                        help='JSON-serialized ExecutorInput from the orchestrator.')
    args, _ = parser.parse_known_args(argv)
    if args.component_module_path is None:
        parser.error('--component_module_path is required by this kfp stand-in')
    module = _load_module(args.component_module_path)
    func = getattr(module, args.function_to_execute, None)
    if func is None:
        raise SystemExit(f'function {args.function_to_execute!r} not found in {args.component_module_path}')
    output_file = executor.Executor(json.loads(args.executor_input), func).execute()
    print(f'Wrote executor output file to {output_file}.', file=sys.stderr)


if __name__ == '__main__':
    executor_main()
