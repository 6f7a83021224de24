"""Maintenance scripts: run from the repository root, never imported by the service."""
