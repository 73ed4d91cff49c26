# Checks the URI <-> local path mapping of the kfp stand-in (run with python3 -c).
from kfp import dsl
from kfp.dsl import *
from typing import *

for uri, path in [('gs://b/k/x', '/gcs/b/k/x'), ('s3://b/k', '/s3/b/k'),
                  ('minio://mlpipeline/v2/a', '/minio/mlpipeline/v2/a'), ('/abs/local/a', '/abs/local/a')]:
    a = Dataset(name='a', uri=uri)
    assert a.path == path, (uri, a.path)
    a.path = path
    assert a.uri == uri, (path, a.uri)

try:
    dsl.get_uri()
    raise AssertionError('get_uri without a task root must fail')
except RuntimeError:
    pass
dsl.CONTAINER_TASK_ROOT = '/gcs/bucket/run/task'
assert dsl.get_uri() == 'gs://bucket/run/task/Output', dsl.get_uri()
assert dsl.get_uri('model') == 'gs://bucket/run/task/model'
dsl.CONTAINER_TASK_ROOT = '/tmp/root/task'
assert dsl.get_uri('x') == '/tmp/root/task/x'

m = Metrics()
m.log_metric('acc', 0.5)
assert m.metadata == {'acc': 0.5}
c = ClassificationMetrics()
c.log_roc_curve([0.0, 0.5], [0.1, 0.9], [1.0, 0.5])
c.log_confusion_matrix(['a', 'b'], [[1, 2], [3, 4]])
assert c.metadata['confidenceMetrics'][1] == {'confidenceThreshold': 0.5, 'recall': 0.9, 'falsePositiveRate': 0.5}
assert c.metadata['confusionMatrix']['rows'] == [{'row': [1, 2]}, {'row': [3, 4]}]


@dsl.component
def bare(x: int) -> int:
    return x


@dsl.component(base_image='python:3.11', packages_to_install=['x'], pip_index_urls=['http://i/simple'])
def with_args(x: int) -> int:
    return x + 1


assert bare.python_func(1) == 1 and bare(2) == 2 and with_args(1) == 2 and bare.__name__ == 'bare'
print('ok')
