"""What people say and press, and what the bot answers: intents, cards, texts, settings."""
