"""The shared package every function imports (and every cloud bundle carries a copy of).

A regular package, not a namespace package: a bundle's own ``common`` must be the only
one a function can import, even where another copy is installed (an editable install
would otherwise merge both into one namespace).
"""
