"""The shipped model: ``model.bin`` (the weights, read by ``detector.model``) and ``model.json`` (its provenance).

This folder is installed as the package ``detector.models`` (see ``pyproject.toml``), so that every install,
a wheel, a Docker image or a Dask worker, finds the model beside this module's file; ``make train`` writes
both files here.
"""
