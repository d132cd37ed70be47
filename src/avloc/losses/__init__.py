"""Importing this package registers its built-in classes."""

from avloc.losses import dense_losses  # noqa: F401
from avloc.losses import avel_losses, cmbs_losses  # noqa: F401
from avloc.losses import ave_losses  # noqa: F401
