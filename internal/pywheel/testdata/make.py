def make(text: str) -> Dataset:
    ds = Dataset(uri=dsl.get_uri('custom'), metadata={'chars': len(text)})
    with open(ds.path, 'w') as f:
        f.write(text)
    return ds
