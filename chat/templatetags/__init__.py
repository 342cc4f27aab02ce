"""Template tags of the chat app."""
