"""Video in, features out: decoding (PyAV), pretrained backbones, and the feature writers of ``avloc extract``."""
