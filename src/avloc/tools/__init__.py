"""The command verbs of ``avloc``: each module parses nothing and calls the library."""
