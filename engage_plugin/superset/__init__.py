"""Superset integration: an import bundle (database, datasets, charts, dashboard) for a
pipeline's tables, and a REST client that pushes it to a Superset."""

from engage_plugin.superset.bundle import build_bundle, bundle_files, stable_uuid, superset_uri

__all__ = ["build_bundle", "bundle_files", "stable_uuid", "superset_uri"]
