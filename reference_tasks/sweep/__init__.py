"""Populations of runs: a grid of reference runs (:mod:`.plan`), run as Dask tasks (:mod:`.cluster`)
on a cluster that lets in no one else (:mod:`.security`) and whose workers import this project's
``adapters`` (:mod:`.installation`), summarised per run and per config (:mod:`.aggregate`)."""
