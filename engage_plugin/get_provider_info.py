"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

Like the official providers, this module has no Airflow import, so ``airflow providers list``
stays cheap. The connection form is declared here (``conn-fields`` and
``ui-field-behaviour``), not by the deprecated hook methods.
"""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "airflow-provider-engage"


def _version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0"


def get_provider_info() -> dict:
    """The provider's description: hooks, operators, connection type, plugin, asset URIs."""
    return {
        "package-name": DISTRIBUTION,
        "name": "Engage",
        "description": "Customer-engagement metrics (DAU/WAU/MAU, retention, lifecycle, ...) "
                       "computed by a Cython core over Apache Arrow and loaded into warehouse "
                       "tables; one DAG per pipeline YAML file.",
        "versions": [_version()],
        "integrations": [
            {
                "integration-name": "Engage",
                "external-doc-url": "https://github.com/engage-metrics/engage/blob/main/docs/airflow.md",
                "tags": ["software"],
            }
        ],
        "operators": [
            {"integration-name": "Engage", "python-modules": ["engage_plugin.operators.engage",
                                                                "engage_plugin.operators.superset"]}
        ],
        "hooks": [
            {"integration-name": "Engage", "python-modules": ["engage_plugin.hooks.engage"]}
        ],
        "connection-types": [
            {
                "connection-type": "engage_warehouse",
                "hook-class-name": "engage_plugin.hooks.engage.EngageWarehouseHook",
                "hook-name": "Engage warehouse",
                "ui-field-behaviour": {
                    "hidden-fields": ["port", "schema"],
                    "relabeling": {"host": "SQLAlchemy URL"},
                    "placeholders": {
                        "host": "duckdb:///engage.duckdb or postgresql://host:5432/analytics",
                        "login": "user (optional, put into the URL)",
                        "password": "password (optional, put into the URL)",
                    },
                },
                "conn-fields": {
                    "uri": {
                        "label": "URL (if not in host)",
                        "description": "SQLAlchemy-style URL of the warehouse, used when the "
                                       "host field is empty.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "table_schema": {
                        "label": "Schema for Engage tables",
                        "description": "Default schema of the metric tables (a pipeline's "
                                       "target.schema wins).",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            }
        ],
        "asset-uris": [{"schemes": ["engage"], "handler": None}],
    }
