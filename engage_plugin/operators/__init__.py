"""Airflow operators of the Engage provider."""
