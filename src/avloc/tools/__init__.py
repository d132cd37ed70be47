"""The ``avloc`` command verbs (train, eval, info, demo, synth, detect-eval, bench, reproduce).

Nothing in the library imports this package: every arrow runs from here down.
"""
