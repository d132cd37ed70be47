"""avloc: audio-visual event localization (AVE segments and dense weakly-supervised events)."""

__version__ = "0.1.0"
