"""mlpipe stand-in for the runtime part of kfp.dsl (KFP SDK 2.x).

Only what a lightweight Python component needs while it runs: the component
decorator, Input/Output/InputPath/OutputPath annotations, artifact classes
and get_uri(). Compiling pipelines is not supported.
"""
import dataclasses
import functools
import os
from typing import Annotated, Dict, List, Optional, TypeVar

__all__ = [
    'component', 'Input', 'Output',
    'InputPath', 'OutputPath', 'Artifact', 'Dataset', 'Model', 'Metrics',
    'ClassificationMetrics', 'SlicedClassificationMetrics', 'HTML',
    'Markdown', 'PipelineTaskFinalStatus', 'get_uri',
    'PIPELINE_JOB_NAME_PLACEHOLDER', 'PIPELINE_JOB_RESOURCE_NAME_PLACEHOLDER',
    'PIPELINE_JOB_ID_PLACEHOLDER', 'PIPELINE_TASK_NAME_PLACEHOLDER',
    'PIPELINE_TASK_ID_PLACEHOLDER', 'PIPELINE_ROOT_PLACEHOLDER',
]

PIPELINE_JOB_NAME_PLACEHOLDER = '{{$.pipeline_job_name}}'
PIPELINE_JOB_RESOURCE_NAME_PLACEHOLDER = '{{$.pipeline_job_resource_name}}'
PIPELINE_JOB_ID_PLACEHOLDER = '{{$.pipeline_job_uuid}}'
PIPELINE_TASK_NAME_PLACEHOLDER = '{{$.pipeline_task_name}}'
PIPELINE_TASK_ID_PLACEHOLDER = '{{$.pipeline_task_uuid}}'
PIPELINE_ROOT_PLACEHOLDER = '{{$.pipeline_root}}'

# Set by the executor to dirname(outputs.outputFile); used by get_uri().
CONTAINER_TASK_ROOT: Optional[str] = None

_REMOTE_TO_LOCAL = (('gs://', '/gcs/'), ('minio://', '/minio/'), ('s3://', '/s3/'))


def convert_local_path_to_remote_path(path: str) -> str:
    for remote, local in _REMOTE_TO_LOCAL:
        if path.startswith(local):
            return remote + path[len(local):]
    return path


def get_uri(suffix: str = 'Output') -> str:
    """Returns a URI under the task root (the executor output's directory)."""
    if CONTAINER_TASK_ROOT is None:
        raise RuntimeError('`dsl.get_uri()` is only supported within the context of running a component in a container.')
    return convert_local_path_to_remote_path(os.path.join(CONTAINER_TASK_ROOT, suffix))


class _Component:
    """What @dsl.component returns: callable, with the function in .python_func."""

    def __init__(self, func, **options):
        functools.update_wrapper(self, func)
        self.python_func = func
        self.name = func.__name__
        self.options = options

    def __call__(self, *args, **kwargs):
        return self.python_func(*args, **kwargs)


def component(func=None, **options):
    """@dsl.component, bare or with (ignored) arguments such as base_image."""
    if func is None:
        return lambda f: _Component(f, **options)
    return _Component(func, **options)


class _InputMarker:
    pass


class _OutputMarker:
    pass


T = TypeVar('T')
Input = Annotated[T, _InputMarker]
Output = Annotated[T, _OutputMarker]


class InputPath:
    def __init__(self, type=None):
        self.type = type


class OutputPath:
    def __init__(self, type=None):
        self.type = type


class Artifact:
    schema_title = 'system.Artifact'
    schema_version = '0.0.1'

    def __init__(self, name: Optional[str] = None, uri: Optional[str] = None, metadata: Optional[Dict] = None):
        self.uri = uri or ''
        self.name = name or ''
        self.metadata = metadata or {}
        self.custom_path = None

    @property
    def path(self) -> str:
        if self.custom_path:
            return self.custom_path
        for remote, local in _REMOTE_TO_LOCAL:
            if self.uri.startswith(remote):
                return local + self.uri[len(remote):]
        return self.uri

    @path.setter
    def path(self, path: str) -> None:
        self.uri = convert_local_path_to_remote_path(path)

    def __repr__(self):
        return f'{type(self).__name__}(name={self.name!r}, uri={self.uri!r}, metadata={self.metadata!r})'


class Dataset(Artifact):
    schema_title = 'system.Dataset'


class Model(Artifact):
    schema_title = 'system.Model'

    @property
    def framework(self) -> str:
        return self.metadata.get('framework', '')

    @framework.setter
    def framework(self, framework: str) -> None:
        self.metadata['framework'] = framework


class Metrics(Artifact):
    schema_title = 'system.Metrics'

    def log_metric(self, metric: str, value: float) -> None:
        self.metadata[metric] = value


class ClassificationMetrics(Artifact):
    schema_title = 'system.ClassificationMetrics'

    def log_roc_data_point(self, fpr: float, tpr: float, threshold: float) -> None:
        point = {'confidenceThreshold': threshold, 'recall': tpr, 'falsePositiveRate': fpr}
        self.metadata.setdefault('confidenceMetrics', []).append(point)

    def log_roc_curve(self, fpr: List[float], tpr: List[float], threshold: List[float]) -> None:
        if not len(fpr) == len(tpr) == len(threshold):
            raise ValueError('fpr, tpr and threshold must have the same length')
        for f, t, th in zip(fpr, tpr, threshold):
            self.log_roc_data_point(f, t, th)

    def log_confusion_matrix(self, categories: List[str], matrix: List[List[int]]) -> None:
        if len(matrix) != len(categories) or any(len(r) != len(categories) for r in matrix):
            raise ValueError('matrix must be square with one row and column per category')
        self.metadata['confusionMatrix'] = {
            'annotationSpecs': [{'displayName': c} for c in categories],
            'rows': [{'row': list(r)} for r in matrix],
        }


class SlicedClassificationMetrics(Artifact):
    schema_title = 'system.SlicedClassificationMetrics'


class HTML(Artifact):
    schema_title = 'system.HTML'


class Markdown(Artifact):
    schema_title = 'system.Markdown'


_SCHEMA_TITLE_TO_TYPE = {c.schema_title: c for c in (
    Artifact, Dataset, Model, Metrics, ClassificationMetrics, SlicedClassificationMetrics, HTML, Markdown)}


@dataclasses.dataclass
class PipelineTaskFinalStatus:
    state: str
    pipeline_job_resource_name: str
    pipeline_task_name: str
    error_code: Optional[int]
    error_message: Optional[str]
