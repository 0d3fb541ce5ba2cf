"""Airflow hooks of the Engage provider."""
