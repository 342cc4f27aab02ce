"""Tests for django-twisted-chat/browser."""
