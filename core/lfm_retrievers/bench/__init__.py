"""Benchmarks behind ``lfm-retrievers bench``: latency, encoder, retrieval, BM25.

Each target is a module returning a JSON-ready dict; :mod:`.machine` holds the machine facts and
timing helpers they share. Benchmarks are not tests: they report ratios measured in one run.
"""
