"""Separation models: the protocol (:mod:`lasskit.models.base`) and the registry."""
