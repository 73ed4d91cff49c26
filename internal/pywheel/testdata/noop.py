def noop(msg: str = 'default message'):
    print(msg)
