"""The Bot API edge: sends within Telegram's limits, flood control, fetching people's files."""
