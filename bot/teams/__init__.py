"""Microsoft Teams: the copilot in Teams channels and chats (Bot Framework)."""
