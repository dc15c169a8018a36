"""Inbound webhooks: verify the sender, validate the payload, store it in the inbox, then 2xx."""
