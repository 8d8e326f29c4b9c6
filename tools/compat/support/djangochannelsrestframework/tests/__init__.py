"""The ``tests`` app: djangochannelsrestframework's test modules import ``tests.*``."""
