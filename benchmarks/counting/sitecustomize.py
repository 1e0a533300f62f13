"""Counts the MongoDB commands of every process of a benchmarked search (benchmarks/counted.py).

Active only when HYPERDIST_COUNT_DIR is set: each process then writes <dir>/<pid>.json at exit, and
<dir>/<pid>.json.<k> when the benchmark creates <dir>/mark.<k> (the steady state's bounds).
search_run.run_search(count=True) sets it, with this directory and benchmarks/ on PYTHONPATH.
"""
import os

if os.environ.get("HYPERDIST_COUNT_DIR"):
    try:
        import counted

        where = os.environ["HYPERDIST_COUNT_DIR"]
        counted.install(os.path.join(where, f"{os.getpid()}.json"), marks=where)
    except ImportError:  # a process without pymongo (none of the search's) counts nothing
        pass
