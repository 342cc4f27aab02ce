"""Tests for django-twisted-chat/chat."""
