"""Tests for django-twisted-chat/chatserver."""
