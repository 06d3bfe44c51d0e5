"""Code shared by the LFM Haystack leaves: devices, the shared encoder, checks, scored copies.

The embedders, the ranker, the retrievers and the document stores import from here; the
namespace levels above the leaves hold no code.
"""
