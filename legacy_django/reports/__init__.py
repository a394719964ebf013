"""Downloadable reports."""
