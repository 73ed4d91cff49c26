def train(n: int, data: Input[Dataset], model: Output[Dataset], scale: float = 0.5) -> int:
    import mlpipe_testpkg
    with open(data.path) as f:
        rows = f.read().splitlines()
    with open(model.path, 'w') as f:
        f.write(f'rows={len(rows)} n={n} answer={mlpipe_testpkg.answer()} '
                f'kfp={kfp.__version__} scale={scale!r} input={type(data).__name__}\n')
    model.metadata['rows'] = len(rows)
    model.metadata['source'] = data.uri
    return n + mlpipe_testpkg.answer()
