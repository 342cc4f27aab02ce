"""Tests for django-twisted-chat/integration."""
