"""LFM2.5-ColBERT for Haystack: a MaxSim ranker for candidate Documents (no index build)."""

from lfm_retrievers.seam import require_extra as require

require("haystack", "haystack", "haystack_integrations.components.rankers.lfm")

from .ranker import LFMColBERTRanker  # noqa: E402

__all__ = ["LFMColBERTRanker"]
