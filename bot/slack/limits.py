"""Slack's Block Kit limits (docs.slack.dev/reference/block-kit), in one place for the text
helpers (`bot.slack.mrkdwn`), the layout (`bot.slack.layout`) and the tests."""

# Slack's documented limits (docs.slack.dev/reference/block-kit).
MAX_BLOCKS = 50
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
MAX_FIELDS = 10
HEADER_TEXT_MAX = 150
CONTEXT_ELEMENTS_MAX = 10
ACTIONS_ELEMENTS_MAX = 25
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
ID_MAX = 255  # action_id, block_id
CONFIRM_MAX = {"title": 100, "text": 300, "confirm": 30, "deny": 30}
FALLBACK_TEXT_MAX = 40_000
# Undocumented: chat.postMessage answers `msg_blocks_too_long` from about 12,000 characters of
# text across a message's blocks (slackapi/bolt-js#2509, #2867), so a message's blocks are kept
# under this many characters of JSON.
MESSAGE_BLOCKS_MAX = 11_000
