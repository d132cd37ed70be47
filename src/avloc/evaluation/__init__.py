"""Importing this package registers its built-in evaluators."""

from avloc.evaluation import segments  # noqa: F401
from avloc.evaluation import dense_map  # noqa: F401
