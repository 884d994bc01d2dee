"""Populations of runs: a grid of reference runs (:mod:`.plan`), run as Dask tasks (:mod:`.cluster`),
summarised per run and per config (:mod:`.aggregate`)."""
