"""The backbones against their papers: linear probes on ESC-10 and the ImageNet head on sample photos."""
