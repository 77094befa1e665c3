"""The ``specxform`` command line: one module per command, wired up in :mod:`specxform.cli.main`."""
