"""Feature backbones; importing this package registers them in ``BACKBONES``."""

from avloc.media.backbones.base import BACKBONES, AudioBackbone, VisualBackbone, create_backbone

__all__ = ["BACKBONES", "AudioBackbone", "VisualBackbone", "create_backbone"]
