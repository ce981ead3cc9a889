"""The domain and the outside world, one sub-package per concern.

- ``conversation``: what people say and press, and what the bot answers (intents, cards, texts).
- ``production``: jobs from draft to delivery (their kinds, credits, the poller, delivery).
- ``media``: ffmpeg and images (probing, effects, the local studio's renders, stitching).
- ``providers``: the video providers (muapi, fal, the local studio) and their model catalogue.
- ``storage``: the database, its migrations and repositories.
- ``telegram``: the Bot API edge (sending within Telegram's limits, fetching people's files).

Dependencies point one way: conversation uses production, which uses providers, media, storage
and telegram; none of those reach back up.
"""
