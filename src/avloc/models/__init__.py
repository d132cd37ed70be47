"""Importing this package registers its built-in classes."""

from avloc.models import clasp, mil  # noqa: F401
