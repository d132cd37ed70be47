"""Feature backbones; importing this package registers them in ``BACKBONES``."""

from avloc.media.backbones.base import BACKBONES, AudioBackbone, VisualBackbone, create_backbone
from avloc.media.backbones import aisfx, efficientnet, soundnet, vgg  # noqa: F401  (registers)

__all__ = ["BACKBONES", "AudioBackbone", "VisualBackbone", "create_backbone"]
