"""Engage's pipeline side: the YAML file (:mod:`.config`), sources and targets, the runner
(:mod:`.runner`, :mod:`.compute`), the ``engage`` command (:mod:`.cli`) and the Superset
bundle (:mod:`.superset`); none of these import Airflow.

Airflow is imported only by the provider modules: :mod:`.hooks`, :mod:`.operators`,
:mod:`.dag_factory`, :mod:`.plugin`, :mod:`.lineage` and the ``airflow_*`` helpers.
"""
