"""specxform's built-in plugins.

Each module is an ordinary plugin, declared in specxform's pyproject.toml under
the entry-point group ``specxform`` exactly as a third-party package declares
its own, and written against the public API only.
"""
