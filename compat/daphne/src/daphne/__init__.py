"""Daphne's names, served by channels-server (the ``daphne`` compatibility distribution).

``"daphne"`` in ``INSTALLED_APPS`` makes ``manage.py runserver``
channels-server's, and the ``daphne`` command is channels-server's command
line. This package is not Daphne: only those two entry points are provided.
"""

from __future__ import annotations

# Stops the import if the real Daphne's files were installed into this folder
# too; it tells the two apart by this distribution's requirement on
# channels-server.
from channels import _installation  # noqa: F401

__all__ = ["__version__"]

__version__ = "4.99.0"
