"""Importing this package registers its built-in classes."""

from avloc.data import ave  # noqa: F401  (registers "ave")
from avloc.data import unav  # noqa: F401  (registers "unav" and "anet")
