"""Tests for django-twisted-chat/support."""
