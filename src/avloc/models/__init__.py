"""Importing this package registers its built-in classes."""

from avloc.models import clasp, linear_mil, mil  # noqa: F401
from avloc.models import psp, vscg  # noqa: F401
from avloc.models import avel, cmbs  # noqa: F401
