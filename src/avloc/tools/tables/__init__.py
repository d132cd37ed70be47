"""Paper tables for `avloc reproduce` (one module per task family)."""
