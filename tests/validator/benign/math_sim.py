import random
import math
import itertools

random.seed(42)


def monte_carlo_pi(n: int) -> float:
    inside = sum(1 for _ in range(n) if random.random() ** 2 + random.random() ** 2 <= 1.0)
    return 4 * inside / n


def primes(limit: int):
    sieve = bytearray([1]) * (limit + 1)
    sieve[0:2] = b"\x00\x00"
    for i in range(2, int(math.isqrt(limit)) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytearray(len(sieve[i * i :: i]))
    return [i for i, ok in enumerate(sieve) if ok]


print(monte_carlo_pi(100_000))
print(primes(100)[:10])
print(list(itertools.islice(itertools.permutations("abc"), 4)))
i = 0
while True:
    i += 1
    if i > 1000:
        break
