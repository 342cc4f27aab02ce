"""Tests for django-twisted-chat."""
