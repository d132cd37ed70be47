"""Networks of every method (registered in avloc.catalog)."""
