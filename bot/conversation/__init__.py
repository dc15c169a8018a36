"""The incident conversation, once for every chat platform: where a message goes (`address`),
what people did (`events`), what a platform must offer (`ports`: `Conversation` to post and
`Renderer` to lay out), the commands (`commands`), the outbox ledger that keeps a post from going
out twice (`ledger`), the incident's record (`records`), and the one implementation of answering,
briefing, status moves, feedback, pins, catch-up (`chat`) and delivering the incident engine's
messages (`delivery`). `bot/slack/` and `bot/teams/` are thin adapters over it."""
