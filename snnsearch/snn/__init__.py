"""Spiking building blocks both tasks use: neurons by name (``neurons``: IF, LIF, PLIF, I-LIF, and
ReLU for the ANN twin), firing-rate monitoring (``monitoring``) and spike figures.

May import: snnsearch.energy, snnsearch.registry, snnsearch.constants.
"""
