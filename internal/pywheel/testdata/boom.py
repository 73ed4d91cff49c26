def boom(x: int):
    raise ValueError(f'boom {x}')
