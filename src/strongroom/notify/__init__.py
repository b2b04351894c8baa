"""Adapters layer: notification channels for events (email, chat, webhooks)."""
