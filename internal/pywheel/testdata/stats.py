def stats(
    text: InputPath('Dataset'),
    summary: OutputPath(str),
    metrics: Output[Metrics],
    tags: List[str],
    cfg: Dict[str, int],
    flag: bool = False,
) -> NamedTuple('Outputs', [('count', int), ('mean', float), ('label', str), ('report', Markdown)]):
    with open(text) as f:
        values = [int(line) for line in f.read().split()]
    mean = sum(values) / len(values)
    with open(summary, 'w') as f:
        f.write(f'{len(values)} values, tags={",".join(tags)}, cfg={sorted(cfg.items())}, flag={flag}')
    metrics.log_metric('mean', mean)
    metrics.log_metric('count', len(values))
    return (len(values), mean, tags[0], f'# mean {mean}\n')
