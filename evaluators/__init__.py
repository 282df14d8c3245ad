"""Evaluation, by layer: ``models`` (what we know of model families), ``backends`` (how a model is
driven), ``run`` (the loop, sweeps, judge). Each layer imports only the ones listed before it."""
