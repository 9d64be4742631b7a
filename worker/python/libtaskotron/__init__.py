"""Compatibility package for Taskotron task code run by the Rust ``runtask``.

Tasks written for libtaskotron do ``from libtaskotron import check``; this package provides
that module (``CheckDetail``, ``ReportType``, ``export_YAML``, ``import_YAML``) with the same
semantics, plus ``libtaskotron.exceptions``. It is embedded in the runtask binary and put on
``PYTHONPATH`` for the ``python`` directive, so nothing needs installing.
"""

__version__ = "0.4.99"
