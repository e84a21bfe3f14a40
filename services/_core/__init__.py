"""Shared service harness: errors, settings, asset store, model registry, provenance, hosting."""
