"""Photos, image files, text and everything else a user can send."""

from __future__ import annotations

from telegram import Animation, Document, Message, Update, Video, VideoNote

from handlers.context import StudioContext
from services.telegram.inbound import InboundImage, InboundMedia


async def photo(update: Update, context: StudioContext) -> None:
    """A photo: animate it (the caption is the prompt); one of an album: a shot of a story."""
    message = update.effective_message
    assert message is not None and message.photo
    largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
    image = InboundImage(
        file_id=largest.file_id,
        file_unique_id=largest.file_unique_id,
        size=largest.file_size,
        width=largest.width,
        height=largest.height,
        mime_type="image/jpeg",
    )
    if message.media_group_id:
        await context.services.studio.storyboard.receive_item(
            context.user(update), message.message_id, message.media_group_id, image, message.caption
        )
        return
    await context.services.studio.receive_photo(
        context.user(update), message.message_id, image, message.caption
    )


async def document(update: Update, context: StudioContext) -> None:
    """A file: decoding decides whether it is a photo, a clip or a sound (its MIME type hints)."""
    message = update.effective_message
    assert message is not None and message.document
    doc = message.document
    item = InboundMedia(
        doc.file_id, doc.file_unique_id, doc.file_size, (doc.mime_type or "").lower()
    )
    replied = message.reply_to_message
    await context.services.studio.receive_file(
        context.user(update),
        message.message_id,
        item,
        message.caption,
        clip_of(replied),
        replied.message_id if replied else None,
    )


def clip_of(message: Message | None) -> InboundMedia | None:
    """The video in a message: a video, an animation (GIF) or a video sent as a file."""
    if message is None:
        return None
    item: Video | Animation | Document | VideoNote | None = (
        message.video or message.animation or message.video_note
    )
    if (
        item is None
        and message.document
        and (message.document.mime_type or "").startswith("video/")
    ):
        item = message.document
    if item is None:
        return None
    mime = (getattr(item, "mime_type", None) or "video/mp4").lower()
    # Telegram's own size, when it gives one, decides the advice for a file too big to fetch.
    width, height = getattr(item, "width", None), getattr(item, "height", None)
    return InboundMedia(item.file_id, item.file_unique_id, item.file_size, mime, width, height)


async def clip(update: Update, context: StudioContext) -> None:
    """A clip: extend it or add music, as the caption says (or ask); one of an album: a shot."""
    message = update.effective_message
    video = clip_of(message)
    assert message is not None and video is not None
    if message.media_group_id:
        await context.services.studio.storyboard.receive_item(
            context.user(update), message.message_id, message.media_group_id, video, message.caption
        )
        return
    replied = message.reply_to_message.message_id if message.reply_to_message else None
    await context.services.studio.clips.receive_clip(
        context.user(update), message.message_id, video, message.caption, replied
    )


async def sound(update: Update, context: StudioContext) -> None:
    """A voice note or audio: as a reply to a video, it becomes the clip's soundtrack."""
    message = update.effective_message
    assert message is not None
    item = message.voice or message.audio
    assert item is not None
    mime = (getattr(item, "mime_type", None) or "audio/ogg").lower()
    audio = InboundMedia(item.file_id, item.file_unique_id, item.file_size, mime)
    await context.services.studio.clips.receive_audio(
        context.user(update), message.message_id, audio, clip_of(message.reply_to_message)
    )


async def text(update: Update, context: StudioContext) -> None:
    """Text: words for a video it replies to, a prompt for a waiting photo, a request for a
    video made from words, or a hint."""
    message = update.effective_message
    assert message is not None and message.text is not None
    user = context.user(update)
    replied = message.reply_to_message
    video = clip_of(replied)
    if replied is not None and video is not None:
        await context.services.studio.clips.receive_clip(
            user, message.message_id, video, message.text, replied.message_id
        )
        return
    reply_to = replied.message_id if replied else None
    await context.services.studio.receive_text(user, message.message_id, message.text, reply_to)


async def other(update: Update, context: StudioContext) -> None:
    """Stickers, locations, contacts, non-image files: a one-line hint."""
    await context.services.studio.say(context.user(update), "other_hint")


async def unknown_command(update: Update, context: StudioContext) -> None:
    """A command the bot does not have: point to /help."""
    await context.services.studio.say(context.user(update), "unknown_command")


def addressed_to_bot(message: Message, username: str) -> bool:
    """A command, an @mention of the bot, or a reply to one of its messages."""
    words = message.text or message.caption or ""
    replied = message.reply_to_message
    return (
        words.startswith("/")
        or f"@{username}".lower() in words.lower()
        or (
            replied is not None
            and replied.from_user is not None
            and replied.from_user.is_bot
            and replied.from_user.username == username
        )
    )


async def group(update: Update, context: StudioContext) -> None:
    """Addressed in a group: the bot works in private chats, and says where to find it."""
    message = update.effective_message
    if message is None or not addressed_to_bot(message, context.bot.username or ""):
        return
    await context.services.studio.say(
        context.user(update), "groups_decline", params={"bot": context.bot.username or "me"}
    )
