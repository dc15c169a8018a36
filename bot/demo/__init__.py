"""`sre-copilot demo`: the showcase. Replays a bundled incident through the real intake path."""
