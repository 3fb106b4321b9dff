"""Notifications: see issue "Notifications through Celery" (built there)."""
