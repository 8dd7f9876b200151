import time, json
def work():
    d = {}
    for i in range(2000):
        d[str(i)] = [i, i * 2, {"a": i}]
    s = 0
    for k, v in d.items():
        s += v[0] + len(k) + v[2]["a"]
    class A:
        __slots__ = ("x",)
        def __init__(self, x): self.x = x
        def f(self): return self.x + 1
    for i in range(2000):
        s += A(i).f()
    json.dumps(d)
    return s
best = 1e9
for _ in range(5):
    t = time.perf_counter()
    for _ in range(50): work()
    best = min(best, time.perf_counter() - t)
print(round(best * 1000, 1), "ms")
