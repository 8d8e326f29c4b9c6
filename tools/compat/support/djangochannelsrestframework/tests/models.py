"""The two models that djangochannelsrestframework's tests observe and serialise.

Their fields are what the tests read and write: ``TestModel`` has an automatic
``id`` and a ``name``; ``TestModelWithCustomPK`` is keyed by its ``name`` and
has an optional ``description``.
"""

from django.db import models


class TestModel(models.Model):
    __test__ = False  # a model, not a pytest test class

    name = models.CharField(max_length=255)


class TestModelWithCustomPK(models.Model):
    __test__ = False

    name = models.CharField(max_length=255, primary_key=True)
    description = models.CharField(max_length=255, null=True, blank=True)
