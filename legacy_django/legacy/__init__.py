"""The ``legacy`` Django project: settings, root URLconf and shared helpers."""
