"""mlpipe stand-in for kfp.dsl.executor: runs one component function against
an ExecutorInput and writes the ExecutorOutput, following the KFP 2.x SDK."""
import inspect
import json
import os
import typing

from kfp import dsl

_PARAMETER_TYPES = (str, int, float, bool, dict, list)


def create_artifact_instance(runtime_artifact: dict, fallback=dsl.Artifact) -> dsl.Artifact:
    schema_title = runtime_artifact.get('type', {}).get('schemaTitle', '')
    cls = dsl._SCHEMA_TITLE_TO_TYPE.get(schema_title, fallback)
    artifact = cls(name=runtime_artifact.get('name', ''), uri=runtime_artifact.get('uri', ''),
                   metadata=runtime_artifact.get('metadata', {}))
    artifact.custom_path = runtime_artifact.get('customPath') or runtime_artifact.get('custom_path') or None
    return artifact


def _strip_optional(ann):
    if typing.get_origin(ann) is typing.Union:
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return ann


def _marker(ann):
    """Returns (dsl._InputMarker | dsl._OutputMarker | None, inner type)."""
    if typing.get_origin(ann) is typing.Annotated:
        for m in ann.__metadata__:
            if m in (dsl._InputMarker, dsl._OutputMarker):
                return m, typing.get_args(ann)[0]
    return None, ann


def _is_artifact(ann) -> bool:
    return inspect.isclass(ann) and issubclass(ann, dsl.Artifact)


def _is_list(ann) -> bool:
    return ann is list or typing.get_origin(ann) is list


def _is_named_tuple(ann) -> bool:
    return inspect.isclass(ann) and issubclass(ann, tuple) and hasattr(ann, '_fields')


def _is_parameter(ann) -> bool:
    return ann in _PARAMETER_TYPES or typing.get_origin(ann) in (list, dict)


class Executor:

    def __init__(self, executor_input: dict, function_to_execute):
        self.func = getattr(function_to_execute, 'python_func', function_to_execute)
        self.executor_input = executor_input
        self.executor_output_path = executor_input['outputs']['outputFile']
        # The task root is the directory of the executor output file.
        dsl.CONTAINER_TASK_ROOT = os.path.split(self.executor_output_path)[0]
        try:
            self.hints = typing.get_type_hints(self.func, include_extras=True)
        except Exception:
            self.hints = dict(getattr(self.func, '__annotations__', {}))
        self.return_annotation = self.hints.get('return', inspect.Signature.empty)
        self.executor_output = {}

        self.input_artifacts = {}
        for name, entry in ((executor_input.get('inputs') or {}).get('artifacts') or {}).items():
            runtime_artifacts = entry.get('artifacts') or []
            if not runtime_artifacts:
                continue
            _, inner = _marker(_strip_optional(self.hints.get(name)))
            if _is_list(inner):
                self.input_artifacts[name] = [create_artifact_instance(a) for a in runtime_artifacts]
            else:
                self.input_artifacts[name] = create_artifact_instance(runtime_artifacts[0])

        self.output_artifacts = {}
        for name, entry in (executor_input['outputs'].get('artifacts') or {}).items():
            runtime_artifacts = entry.get('artifacts') or []
            if runtime_artifacts:
                artifact = create_artifact_instance(runtime_artifacts[0])
                self.output_artifacts[name] = artifact
                _makedirs_for(artifact.path)

    def _parameter_values(self) -> dict:
        return (self.executor_input.get('inputs') or {}).get('parameterValues') or {}

    def _output_parameter_path(self, name: str) -> typing.Optional[str]:
        param = (self.executor_input['outputs'].get('parameters') or {}).get(name)
        path = param.get('outputFile') if param else None
        if path:
            _makedirs_for(path)
        return path

    def _task_final_status(self, value: dict) -> dsl.PipelineTaskFinalStatus:
        error = value.get('error') or {}
        return dsl.PipelineTaskFinalStatus(
            state=value.get('state'),
            pipeline_job_resource_name=value.get('pipelineJobResourceName', value.get('pipeline_job_resource_name')),
            pipeline_task_name=value.get('pipelineTaskName', value.get('pipeline_task_name')),
            error_code=error.get('code'),
            error_message=error.get('message'))

    def _argument(self, name: str, ann, param: inspect.Parameter):
        """Returns (present, value) for one function parameter."""
        ann = _strip_optional(ann)
        marker, inner = _marker(ann)
        values = self._parameter_values()
        if marker is dsl._OutputMarker:
            return True, self.output_artifacts.get(name)
        if marker is dsl._InputMarker or _is_artifact(ann):
            if name in self.input_artifacts:
                return True, self.input_artifacts[name]
            return param.default is inspect.Parameter.empty, None
        if isinstance(ann, dsl.OutputPath):
            if name in (self.executor_input['outputs'].get('parameters') or {}):
                return True, self._output_parameter_path(name)
            artifact = self.output_artifacts.get(name)
            if artifact is None:
                raise ValueError(f'output {name!r} is not in the executor input')
            return True, artifact.path
        if isinstance(ann, dsl.InputPath):
            if name in self.input_artifacts:
                return True, self.input_artifacts[name].path
            return param.default is inspect.Parameter.empty, None
        if ann is dsl.PipelineTaskFinalStatus:
            return True, self._task_final_status(values.get(name) or {})
        if name not in values or values[name] is None:
            return False, None
        value = values[name]
        if ann is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        return True, value

    def _handle_single_return_value(self, output_name: str, ann, value) -> None:
        ann = _strip_optional(ann)
        if _is_parameter(ann):
            origin = typing.get_origin(ann) or ann
            accepted = (int, float) if origin is float else origin
            if not isinstance(value, accepted):
                raise ValueError(f'Function `{self.func.__name__}` returned value of type {type(value)}; '
                                 f'want type {ann} for output {output_name!r}')
            self.executor_output.setdefault('parameterValues', {})[output_name] = value
        elif _is_artifact(ann):
            if isinstance(value, dsl.Artifact):
                self.output_artifacts[output_name] = value
            else:
                artifact = self.output_artifacts.get(output_name)
                if artifact is None:
                    raise ValueError(f'output artifact {output_name!r} is not in the executor input')
                with open(artifact.path, 'w') as f:
                    f.write(str(value))
        else:
            raise RuntimeError(f'Unknown return type: {ann}. Must be one of the supported parameter '
                               'types, an artifact type, or a typing.NamedTuple.')

    def write_executor_output(self, func_output=None) -> str:
        ret = self.return_annotation
        if func_output is not None:
            if _is_parameter(_strip_optional(ret)) or _is_artifact(_strip_optional(ret)):
                self._handle_single_return_value('Output', ret, func_output)
            elif _is_named_tuple(ret):
                if len(ret._fields) != len(func_output):
                    raise RuntimeError(f'Expected {len(ret._fields)} return values from function '
                                       f'`{self.func.__name__}`, got {len(func_output)}')
                for i, field in enumerate(ret._fields):
                    field_type = typing.get_type_hints(ret, include_extras=True).get(field)
                    value = func_output[i] if type(func_output) is tuple else getattr(func_output, field)
                    self._handle_single_return_value(field, field_type, value)
            else:
                raise RuntimeError(f'Unknown return type: {ret}. Must be one of the supported parameter '
                                   'types, an artifact type, or a typing.NamedTuple.')
        if self.output_artifacts:
            artifacts = self.executor_output['artifacts'] = {}
            for name, artifact in self.output_artifacts.items():
                runtime_artifact = {'name': artifact.name, 'uri': artifact.uri, 'metadata': artifact.metadata}
                if artifact.custom_path:
                    runtime_artifact['custom_path'] = artifact.custom_path
                artifacts[name] = {'artifacts': [runtime_artifact]}
        _makedirs_for(self.executor_output_path)
        with open(self.executor_output_path, 'w') as f:
            json.dump(self.executor_output, f)
        return self.executor_output_path

    def execute(self) -> str:
        kwargs = {}
        for name, param in inspect.signature(self.func).parameters.items():
            present, value = self._argument(name, self.hints.get(name, param.annotation), param)
            if present:
                kwargs[name] = value
        return self.write_executor_output(self.func(**kwargs))


def _makedirs_for(path: str) -> None:
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
