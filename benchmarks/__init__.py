"""The benchmark suite: ``python -m benchmarks [--quick] [--only NAME] [--out DIR]``.

Every measurement runs in its own subprocess with a timeout, over 127.0.0.1 only. Results are
printed (one ``TARGET`` line per target), written as JSON to ``--out`` and summarised in
``benchmarks/RESULTS.md``. Benchmarks never run inside the test suite.
"""
