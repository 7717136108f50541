"""Modules written the way students write them, to test the checker on.

``correct`` holds right but tricky modules that must pass; ``broken`` holds one module per bug
class, each of which a named check must flag. They use plain torch tensor ops and know nothing
of nnlite or gradcheck.
"""
