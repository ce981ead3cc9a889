"""Every user-facing text, per language, keyed by name. HTML parse mode.

Parameters are escaped by the caller (``views``) when they carry user text; the templates
themselves are trusted HTML.
"""

from __future__ import annotations

from typing import Final

from services.texts_ru import RU

DEFAULT_LANGUAGE: Final = "en"

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "start": (
            "<b>Hi {name}!</b> I turn photos into short videos.\n\n"
            "• Send a photo with a caption, e.g. <i>slow zoom in, 10 seconds</i>\n"
            "• Or send a photo alone and pick a camera move\n"
            "• Words like <i>TikTok</i>, <i>vertical</i> or <i>square</i> set the shape\n\n"
            "You see the cost before anything runs. /help lists everything."
        ),
        "help": (
            "<b>How it works</b>\n"
            "1. Send a photo (or an image file) with a caption saying what should happen.\n"
            "2. Check the card: motion, length, shape and cost. Press <b>Generate</b>.\n"
            "3. I keep one status message up to date and send the video here.\n\n"
            "Camera moves: zoom in, zoom out, pan left/right/up/down.\n"
            "Length: 5 or 10 seconds. Shape: 16:9, 9:16 (TikTok, Reels) or 1:1.\n\n"
            "Or write what to film, e.g. <i>make a video of a fox in the snow, vertical</i>: "
            "I turn it into a cinematic prompt and show it on the card first.\n\n"
            "Add <i>just do it</i> to a caption to skip the card.\n\n"
            "/status — what is running · /history — your videos · /credits — what is left today\n"
            "/models — models and prices · /settings — defaults, language\n"
            "/cancel — stop what is waiting or running (you are not charged)"
        ),
        "text_hint": (
            "Send me a photo with a caption and I will animate it, "
            "e.g. <i>zoom out slowly, vertical</i>. Or ask for a video in words: "
            "<i>make a video of a fox in the snow</i>. /help has more."
        ),
        "other_hint": "I work with photos and clips. Send a photo to animate it.",
        "ask_motion": (
            "Nice photo. How should the camera move? Pick one, "
            "or reply to this message with what should happen."
        ),
        "card": (
            "<b>{what}</b> with {model}\n{details}\nPrompt: <i>{prompt}</i>\n\n"
            "This costs <b>{cost} credits</b> ({available} left today)."
        ),
        "details_animate": "Motion: {motion}\nLength: {duration} s · Shape: {aspect}",
        "details_extend": "Adds {duration} s · {effect}",
        "details_extend_chained": "Continues this video on the provider: +{duration} s",
        "details_music": "A generated soundtrack · mood: {mood}",
        "details_music_ai": "Sound made to match the picture",
        "details_mix": "Your audio under the clip",
        "details_text": "Length: {duration} s · Shape: {aspect}",
        "details_text_crafted": "Length: {duration} s · Shape: {aspect}\n"
        "The prompt below is written from your words; ✍ sends your own words instead.",
        "text_video_needs_key": (
            "Making a video from words alone needs a video model, and this bot runs without one "
            "(its operator can add a muapi.ai or fal.ai key). What I can do here: send a photo "
            "with what should happen, e.g. <i>slow zoom in, vertical</i>, and I'll animate it; "
            "or send 2–10 photos as an album and I'll make them one story."
        ),
        "effect_slow_tail": "slow-motion tail",
        "effect_boomerang": "boomerang",
        "effect_hold_push": "hold and push in",
        "mood_calm": "calm",
        "mood_happy": "happy",
        "mood_epic": "epic",
        "mood_dark": "dark",
        "mood_dreamy": "dreamy",
        "ask_clip": "Got the clip. What should I do with it?",
        "btn_extend": "➕ Extend",
        "btn_music": "🎵 Add music",
        "clip_too_big": (
            "This clip is {size}, but I can only fetch files up to {limit} from Telegram. "
            "Trim it or send a more compressed copy."
        ),
        "clip_too_big_hd": (
            "This clip is {size}, but I can only fetch files up to {limit} from Telegram. "
            "Trim it or send it in 720p."
        ),
        "clip_is_still": (
            "This is a still picture, not a clip. Send it as a photo and I'll animate it."
        ),
        "clip_too_long": (
            "This clip is {seconds} s long; I work with clips up to {limit} s. Trim it."
        ),
        "clip_too_long_for_model": (
            "This clip is {seconds} s long; {model} works on clips up to {limit} s. "
            "Trim it and send it again."
        ),
        "clip_unreadable": (
            "I couldn't read this clip: it doesn't play as a video. Send it as a video or an MP4."
        ),
        "not_a_video": "This file is not a video I can use. Send an MP4 clip.",
        "audio_too_big": "This audio is {size}; I can fetch up to {limit}. Send a shorter one.",
        "audio_unreadable": "I couldn't read this audio. Send a voice note or an MP3/M4A/OGG file.",
        "audio_needs_video": "Reply to a video with this audio and I'll put it under the clip.",
        "what_animate": "Animate photo",
        "what_extend": "Extend clip",
        "what_music": "Add sound",
        "what_mix": "Your audio on the clip",
        "what_text": "Video from your words",
        "what_story": "Story",
        "story_needs_key": (
            "A story from words needs a video model, and this bot runs without one (its operator "
            "can add a muapi.ai or fal.ai key). What I can do here: send 2–10 photos as an album, "
            "with a caption if you like, and I'll make them one story with camera moves, "
            "crossfades and music."
        ),
        "story_edit_hint": (
            "To change a shot, reply to the plan with its number and what should change, "
            "e.g. <i>shot 2: make it night</i> (shots 1–{count})."
        ),
        "story_edit_local": "The studio moves photos with the camera; words cannot change them.",
        "story_shot_limit": "That is as far as it goes.",
        "btn_story_more": "➕ Shot",
        "btn_story_less": "➖ Shot",
        "submitted_story": "Making your story: {count} shots with {model}, then joining them.",
        "details_story": "{count} shots · {seconds} s · {transition} · {music}\n{shots}",
        "story_shot_photo": "{number}. photo · {motion} · {seconds} s",
        "story_shot_clip": "{number}. your clip · {seconds} s",
        "story_shot_words": "{number}. {prompt} · {seconds} s",
        "story_fades": "crossfades",
        "story_cuts": "cuts",
        "story_music": "music: {mood}",
        "story_no_music": "no music",
        "btn_story_cuts": "✂ Cuts",
        "btn_story_fades": "◐ Crossfades",
        "btn_story_music": "♪ Music",
        "btn_story_no_music": "🔇 No music",
        "status_story": "Shots: {shots} ({done} of {total} ready)… {elapsed}",
        "status_stitching": "All shots ready, putting the story together… {elapsed}",
        "shot_failed": (
            "Shot {numbers} of your story could not be made; its credits are back. "
            "Try it again, or finish the story without it?"
        ),
        "btn_shot_retry": "↻ Try the shot again",
        "btn_shot_skip": "⏭ Finish without it",
        "shot_fallback": "Shot {number}: the model failed, trying it with {new}.",
        "story_going_on": "On it.",
        "story_abandoned": "the story waited a day for an answer about a failed shot.",
        "album_too_long": "A story takes up to {count} photos or clips; I used the first {count}.",
        "models_text_head": "\n<b>From words</b> (text to video):",
        "motion_zoom_in": "zoom in",
        "motion_zoom_out": "zoom out",
        "motion_pan_left": "pan left",
        "motion_pan_right": "pan right",
        "motion_pan_up": "pan up",
        "motion_pan_down": "pan down",
        "btn_generate": "▶ Generate",
        "btn_cancel": "✖ Cancel",
        "btn_duration": "⏱ {duration} s",
        "btn_aspect": "▭ {aspect}",
        "btn_try_again": "↻ Try again",
        "submitted": "Submitted to {model} — usually {typical}. I'll send it here.",
        "status_queued": "Waiting to start… {elapsed}",
        "status_waiting_turn": "In line: it starts as soon as the job before it is done… {elapsed}",
        "status_queue_position": "In the provider's queue (position {position})… {elapsed}",
        "status_running": "Rendering with {model}… {elapsed}",
        "status_running_pct": "Rendering with {model}… {percent}% · {elapsed}",
        "status_downloading": "Finished rendering, fetching the video… {elapsed}",
        "status_delivering": "Sending the video… {elapsed}",
        "status_slow": "Complex scenes take a little longer.",
        "status_very_slow": "This is taking longer than usual; I'm still on it.",
        "status_done": "Done in {elapsed}. ✓",
        "status_unconfirmed": (
            "Your video went to Telegram, but Telegram did not confirm it arrived. "
            "If it is not in the chat, tap the button to send it again."
        ),
        "btn_resend": "↻ Send it again",
        "status_stopped": "Stopped: {reason}",
        "caption": "{what} · {model}{length}\n<i>{prompt}</i>",
        "caption_length": " · {duration} s",
        "large_note": "This is a large file ({size}); it may take a moment to load.",
        "link_fallback": (
            "The video is ready but {reason}. Download it here (the link expires soon): {url}\n"
            "You were not charged."
        ),
        "no_link_fallback": (
            "The video was made but {reason}, and I have no link to give you. You were not charged."
        ),
        "reason_download_failed": "I could not fetch it from the provider",
        "reason_too_big": "it is too large for Telegram ({size}) and could not be shrunk",
        "reason_send_failed": "Telegram would not accept the upload",
        "not_charged": "You were not charged.",
        "failed": "Sorry, that didn't work: {reason} You were not charged.",
        "failed_provider": "the provider could not make this video ({detail}).",
        "failed_media": "the video could not be processed.",
        "failed_download": "the finished video could not be downloaded.",
        "failed_delivery": "the video could not be sent to Telegram.",
        "failed_storage": "the server ran out of room for the video.",
        "failed_unavailable": "video generation is temporarily unavailable.",
        "failed_content": "the request was refused by the provider's content rules.",
        "timed_out": (
            "Sorry, this took too long ({elapsed}) and I stopped waiting. You were not charged."
        ),
        "stalled": (
            "Sorry, the render stopped making progress, so I gave up on it. You were not charged."
        ),
        "unknown": (
            "I lost track of this request during a restart and can't tell whether it "
            "started, so I won't send it again. You were not charged."
        ),
        "canceled": "Canceled. You were not charged.",
        "cancel_nothing": "Nothing to cancel.",
        "button_not_yours": "This button belongs to someone else.",
        "button_expired": "This button has expired. Send the photo again to start over.",
        "already_started": "Already on it.",
        "photo_too_big": (
            "This file is {size}, but I can only fetch files up to {limit} from Telegram. "
            "Send a smaller image (a normal photo, not a file, works best)."
        ),
        "photo_unreadable": (
            "I couldn't read this image. Send a photo, or a JPEG, PNG, HEIC or WebP file."
        ),
        "photo_too_many_pixels": (
            "This image has {megapixels} megapixels; I can take up to {limit}. "
            "Send a smaller copy (a normal photo works best)."
        ),
        "photo_first_frame": (
            "This image moves; I'll animate its first frame. To extend the animation itself, "
            "send it as a GIF or video, not as a file."
        ),
        "file_too_big": (
            "This file is {size}, but I can only fetch files up to {limit} from Telegram."
        ),
        "file_unreadable": (
            "I couldn't find a photo, video or sound in this file. "
            "Send a photo, a video or an audio file."
        ),
        "photo_dimensions": (
            "This image is {width}×{height}. I need at least {min_side} px on each side and "
            "a shape no longer than {max_ratio}:1."
        ),
        "not_an_image": "This file is not an image. Send a photo or an image file.",
        "no_credits": (
            "Your credits reset at {reset_clock} {zone} — in {reset_in}. "
            "This needs {needed} credits and you have {available} left today."
        ),
        "unknown_command": "I don't know that command. /help lists what I can do.",
        "model_fallback": (
            "{old} is unavailable right now, so I'm using {new} instead (same price)."
        ),
        "model_skipped": "{old} can't work on this clip, so I'm using {new} instead (same price).",
        "aspect_as_photo": "as the photo",
        "not_allowed": "Sorry, this bot is private. Ask its owner for access.",
        "refused_sexual": "I can't make sexual content. Try a different idea.",
        "refused_minors": "I can't make that: it involves minors in a suggestive way.",
        "refused_likeness": (
            "I can't make videos of real, named people or deepfakes without their consent."
        ),
        "busy": (
            "You already have {count} videos in progress. Wait for one to finish, or /cancel one."
        ),
        "busy_short": "Too many running; wait or /cancel.",
        "btn_model": "🎬 Model",
        "btn_own_words": "✍ My words",
        "btn_crafted": "✨ Crafted prompt",
        "btn_again": "↻ Again",
        "btn_as_file": "📎 As file",
        "btn_send_again": "Send #{id} again",
        "state_draft": "waiting for Generate",
        "state_queue": "in queue, position {position}",
        "state_queued": "starting",
        "state_submitting": "starting",
        "state_running": "rendering",
        "state_downloading": "fetching",
        "state_delivering": "sending",
        "status_none": "Nothing is running. Send a photo to start.",
        "status_head": "<b>Your jobs</b>",
        "history_none": "No videos yet. Send a photo to make your first one.",
        "history_head": "<b>Your recent videos</b>",
        "credits": (
            "You have <b>{available}</b> of {daily} credits left today. "
            "They reset at {reset_clock} {zone} — in {reset_in}."
        ),
        "credits_unlimited": "You are an admin: your credits are unlimited.",
        "credits_word": "credits",
        "models_head": "<b>Models</b> (✓ = what new photos use)",
        "settings_head": "<b>Settings</b> — tap one to change it.",
        "setting_model": "Model",
        "setting_quality": "Mode",
        "setting_aspect": "Shape",
        "setting_duration": "Length",
        "setting_as_file": "Send as file",
        "setting_skip_confirm": "Skip confirmation",
        "setting_language": "Language",
        "setting_auto": "auto",
        "setting_on": "on",
        "setting_off": "off",
        "quality_quality": "quality",
        "quality_fast": "fast",
        "output_gone": "That file is no longer kept. Use /history to send the video again.",
        "failed_delivery_short": "Telegram would not take the file.",
        "stats": (
            "<b>Stats</b> ({provider})\nUsers: {users}\nJobs: {jobs}\nCredits spent today: {spent}"
        ),
        "hours_minutes": "{hours} h {minutes} min",
        "slow_down": "You're sending messages very fast. Give me a few seconds, then go on.",
        "groups_decline": ("I make videos in private chats. Message me directly: @{bot}"),
        "error_generic": "Something went wrong on my side. Please try again in a minute.",
        # --- credit packs (Telegram Stars) ---
        "credits_bought": "Bought credits: <b>{bought}</b>. They don't expire; they are used "
        "once today's run out.",
        "buy_head": (
            "<b>Credit packs</b>, paid in Telegram Stars. Your {daily} free credits come back "
            "every day; bought credits don't expire and are used once the day's are spent."
        ),
        "buy_offer": "If you'd rather not wait, a credit pack is an option:",
        "btn_pack": "{credits} credits — {stars} ⭐",
        "invoice_title": "{credits} credits",
        "invoice_description": (
            "{credits} credits for making videos here. They don't expire and are used once "
            "your free daily credits run out."
        ),
        "pack_gone": "That pack is no longer offered. /buy shows the current ones.",
        "buy_failed": "I couldn't create the invoice just now. Please try /buy again in a minute.",
        "checkout_unknown": "This invoice is no longer valid. Please use /buy for a new one.",
        "checkout_paid": "This invoice has already been paid. Use /buy for another pack.",
        "checkout_foreign": "This invoice was made for someone else. Use /buy for your own.",
        "checkout_changed": "This invoice doesn't match its pack any more. Please use /buy again.",
        "paid_thanks": (
            "Thank you! <b>{credits} credits</b> added. You now have {bought} bought credits "
            "and {today} of today's {daily}."
        ),
        "paysupport": (
            "<b>Help with a payment</b>\n"
            "Write <code>/paysupport</code> followed by what happened (which pack, roughly "
            "when); the bot's operators get it and answer here. A pack whose credits you "
            "haven't used can be refunded. See /terms."
        ),
        "paysupport_sent": "Thanks — your message went to the operators. They'll answer here.",
        "payment_unmatched": (
            "I received your payment of {stars} ⭐ but could not match it to a pack. The "
            "operators have been told and will sort it out or refund it."
        ),
        "payment_unmatched_admin": (
            "⚠️ A payment of {stars} ⭐ from {user} (id {user_id}) matches no order. "
            "Refund it with <code>/refund {charge}</code>."
        ),
        "paysupport_admin": "💬 Payment help from {user} (id {user_id}):\n{message}",
        "terms": (
            "<b>Terms of purchase</b>\n"
            "• Packs are paid in Telegram Stars and add credits to this account.\n"
            "• Bought credits don't expire; your free daily credits are used first.\n"
            "• A video that fails or is cancelled gives its credits back automatically.\n"
            "• Unused packs can be refunded on request through /paysupport; credits already "
            "spent are not.\n"
            "• Videos are made by third-party AI models; results vary and may be declined by "
            "their safety rules."
        ),
        "refund_usage": "Usage: <code>/refund charge_id</code> (from the payment's record).",
        "refund_unknown": "No payment with that charge id.",
        "refund_done": (
            "Refunded {stars} ⭐ to user {user_id}. Took back {taken} credits; {spent} of the "
            "pack's {credits} had been spent."
        ),
        "refund_already": (
            "That payment was refunded already; {taken} credits were taken back then."
        ),
        "refund_failed": "Telegram did not refund it: {reason}",
        "refunded_user": (
            "Your payment of {stars} ⭐ was refunded. The pack's unspent credits ({taken}) "
            "were removed."
        ),
        "stats_sales": (
            "\nStars: {stars_today} today, {stars_total} in all ({refunded} refunded)\n"
            "Packs sold: {packs_today} today, {packs_total} in all"
        ),
    },
}


TEXTS["ru"] = RU


def text(lang: str, key: str, **params: object) -> str:
    """The text ``key`` in ``lang`` (English if missing), with parameters filled in."""
    table = TEXTS.get(lang) or TEXTS[DEFAULT_LANGUAGE]
    template = table.get(key) or TEXTS[DEFAULT_LANGUAGE][key]
    return template.format(**params) if params else template


def language_for(code: str | None) -> str:
    """The supported language closest to a Telegram ``language_code``."""
    if code:
        base = code.split("-")[0].lower()
        if base in TEXTS:
            return base
    return DEFAULT_LANGUAGE


def human_size(size: int) -> str:
    """``12.3 MB`` (decimal megabytes, as Telegram counts them)."""
    return f"{size / 1_000_000:.1f} MB"
