"""Engage's pipeline side: the YAML file, sources, targets, the runner and the ``engage``
command. Airflow lives in :mod:`engage_plugin.hooks` and :mod:`engage_plugin.operators` only."""
