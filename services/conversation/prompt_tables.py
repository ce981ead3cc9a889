"""Prompt craft's word tables, per language: how people ask for a video, and which words call
for which camera move, lens, light, atmosphere and style. Data only; ``prompt_craft`` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Phrasing:
    """One language's words about the request itself rather than about the video's content.

    Entries ending in "*" match any word starting with them (stems, for Russian endings); the
    others match whole words. Multi-word entries match any whitespace between the words.
    """

    askers: tuple[str, ...]  # lead-ins before the verb: "can you", "хочу"
    verbs: tuple[str, ...]
    recipients: tuple[str, ...]  # "make *me* a video"
    articles: tuple[str, ...]
    adjectives: tuple[str, ...]  # only dropped when a media noun follows: "a *short* video"
    nouns: tuple[str, ...]  # the media the user asks for: "video", "ролик*"
    linkers: tuple[str, ...]  # between the request and the subject: "of", "про"
    prepositions: tuple[str, ...]  # before a platform or shape: "for TikTok", "в тикток"
    platforms: tuple[str, ...]  # dropped anywhere: nobody films a TikTok
    platforms_after_preposition: tuple[str, ...]  # "for shorts", but "a man in shorts" stays
    platform_prepositions: tuple[str, ...]  # the prepositions that make those a platform
    shapes: tuple[str, ...]  # only next to a media/format word or standing alone ("…, vertical")
    format_words: tuple[str, ...]
    duration_prepositions: tuple[str, ...]
    numbers: tuple[str, ...]  # in words; digits are always numbers
    units: tuple[str, ...]  # spaced or hyphenated: "10 sec", "10-second", "ten seconds"
    attached_units: tuple[str, ...]  # only right after digits: "10s" ("5 s" is too ambiguous)
    quality: tuple[str, ...]
    go_ahead: tuple[str, ...]  # "just do it" is for the bot, not the model
    courtesy: tuple[str, ...]
    conjunctions: tuple[str, ...]  # left dangling once what they joined went: "TikTok and Reels"


DIGITS = r"(?<!\w)\d{1,3}(?:[.,]\d)?"

PHRASING: dict[str, Phrasing] = {
    "en": Phrasing(
        askers=(
            "hey", "hi", "ok", "okay", "so", "just", "now", "can you", "could you", "would you",
            "will you", "can u", "i want you to", "i want to see", "i want", "i'd like you to",
            "i'd like to see", "i'd like", "i would like", "i need", "let's", "lets",
        ),
        verbs=(
            "make", "create", "generate", "render", "produce", "shoot", "film", "animate",
            "give", "show", "build", "craft", "do", "draw", "imagine", "visualize", "visualise",
        ),
        recipients=("me", "us", "for me", "for us"),
        articles=("a", "an", "the", "some", "one", "another"),
        adjectives=(
            "short", "little", "small", "nice", "cool", "cinematic", "beautiful", "new",
            "simple", "ai", "awesome", "epic",
        ),
        nouns=(
            "video*", "clip*", "film", "movie", "animation", "reel", "scene", "shot", "footage",
            "sequence",
        ),
        linkers=(
            "of", "about", "with", "showing", "featuring", "where", "in which", "that shows",
            "depicting", "how", "of how", "about how", "showing how",
        ),
        prepositions=("for", "on", "in", "as", "to"),
        platforms=(
            "tiktok", "tik tok", "tik-tok", "youtube shorts", "yt shorts", "youtube", "instagram",
            "instagram reels", "instagram stories", "instagram story", "ig", "insta", "reels",
            "snapchat", "facebook", "widescreen", "9:16", "16:9", "1:1", "4:5", "4:3", "21:9",
            "aspect ratio 9:16", "aspect ratio 16:9", "aspect ratio 1:1",
        ),
        platforms_after_preposition=("shorts", "stories", "story", "reel"),
        platform_prepositions=("for", "as", "on"),
        shapes=("vertical", "vertically", "horizontal", "square", "portrait", "landscape"),
        format_words=("format", "orientation", "mode", "aspect ratio", "aspect", "frame"),
        duration_prepositions=(
            "for", "about", "around", "approximately", "approx", "under", "up to", "of",
        ),
        numbers=(
            "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
            "fifteen", "twenty", "thirty", "sixty",
        ),
        units=("sec", "secs", "second", "seconds", "min", "mins", "minute", "minutes"),
        attached_units=("s",),
        quality=(
            "quick", "quickly", "draft", "preview", "rough", "rough cut", "cheap", "low quality",
            "low-quality", "low res", "low-res", "high quality", "high-quality", "best quality",
            "hq", "hd", "4k", "1080p", "720p", "as fast as possible", "asap", "just a test",
            "as a test", "test run",
        ),
        go_ahead=(
            "just do it", "just go", "just make it", "no questions", "no questions asked",
            "don't ask", "dont ask", "don't ask me", "do not ask", "no confirm",
            "no confirmation", "without confirmation", "without asking", "skip confirmation",
            "skip the confirmation", "go ahead", "right away",
        ),
        courtesy=("please", "pls", "plz", "thanks", "thank you", "thx"),
        conjunctions=("and", "or", "&", "and also", "plus"),
    ),
    "ru": Phrasing(
        askers=(
            "а", "ну", "привет", "слушай", "давай", "просто", "можешь", "можете", "можно",
            "не мог бы ты", "не могли бы вы", "хочу", "я хочу", "хочу чтобы ты", "мне нужно",
            "мне нужен", "мне нужна", "нужно", "нужен", "нужна",
        ),
        verbs=(
            "сделай", "сделайте", "сделать", "создай", "создайте", "создать", "сгенерируй",
            "сгенерируйте", "сгенерировать", "сними", "снимите", "снять", "нарисуй",
            "нарисовать", "покажи", "покажите", "показать", "запили", "смонтируй", "оживи",
            "анимируй",
        ),
        recipients=("мне", "нам", "для меня", "для нас"),
        articles=("одно", "один", "одну", "какое-нибудь", "какой-нибудь", "какую-нибудь"),
        adjectives=(
            "коротк*", "небольш*", "красив*", "крут*", "классн*", "кинематографичн*",
            "маленьк*", "новое", "новый", "новую",
        ),
        nouns=(
            "видео", "видос*", "видеоролик*", "ролик*", "клип*", "анимаци*", "мультик*",
            "фильм*", "сцен*", "кадр*", "футаж*",
        ),
        linkers=(
            "про", "о", "об", "обо", "с", "со", "где", "на тему", "в котором", "в которой",
            "на котором", "как", "который показывает", "показывающ*", "с изображением",
            "о том как", "о том, как", "про то как", "про то, как", "о том что", "о том, что",
        ),
        prepositions=("для", "в", "во", "под", "на"),
        platforms=(
            "тикток*", "тик ток*", "тик-ток*", "рилс*", "шортс*", "ютуб*", "инстаграм*",
            "инстаграмм*", "инсты", "инсту", "инст", "сторис", "ватсап*",
            # Russian users often write the brand in Latin letters after a Russian preposition.
            "tiktok", "tik tok", "reels", "shorts", "youtube", "youtube shorts", "instagram",
        ),
        platforms_after_preposition=(),
        platform_prepositions=(),
        shapes=("вертикальн*", "горизонтальн*", "квадратн*"),
        format_words=("формат*", "ориентаци*", "режим*"),
        duration_prepositions=(
            "на", "длиной", "длительностью", "продолжительностью", "около", "примерно", "до",
            "по",
        ),
        numbers=(
            "один", "одну", "две", "два", "три", "четыре", "пять", "шесть", "семь", "восемь",
            "девять", "десять", "пятнадцать", "двадцать", "тридцать",
        ),
        units=("сек", "сек.", "секунд*", "секундн*", "мин", "мин.", "минут*", "минутн*"),
        attached_units=("с", "c"),
        quality=(
            "быстро", "побыстрее", "по-быстрому", "быстренько", "черновик*", "превью",
            "пробн*", "тестов*", "в хорошем качестве", "в высоком качестве",
            "в низком качестве", "в лучшем качестве", "качественн*",
        ),
        go_ahead=(
            "просто сделай", "просто сними", "просто создай", "без вопросов", "не спрашивай",
            "без подтверждения", "сразу",
        ),
        courtesy=("пожалуйста", "пж", "плиз", "спасибо"),
        conjunctions=("и", "или", "а также", "плюс"),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Cue:
    """Words that suggest a look, per language, and the look they suggest.

    The looks are English whatever the user's language: video models follow English prompts
    best, and without an LLM we cannot translate the subject, so a Russian subject is followed
    by English descriptors. The models read such mixed prompts well.
    """

    words: dict[str, tuple[str, ...]]
    camera: str = ""
    lens: str = ""
    light: str = ""
    atmosphere: str = ""
    style: str = ""


# Table order is priority: for each slot the first matching cue wins (atmosphere and style take
# up to two), so specific cues (neon city) sit above general ones (night).
CUES: tuple[Cue, ...] = (
    Cue(
        {
            "en": ("drone", "aerial*", "bird's-eye", "birds-eye", "bird's eye", "from above",
                   "overhead", "from the sky", "flyover", "fly over", "flying over"),
            "ru": ("дрон*", "квадрокоптер*", "с высоты", "сверху", "с воздуха", "аэросъ*",
                   "с птичьего полёта", "с птичьего полета", "пролёт*", "пролет*"),
        },
        camera="slow aerial drone move high above the scene",
        lens="wide 24 mm lens",
    ),
    Cue(
        {"en": ("timelapse", "time-lapse", "time lapse"),
         "ru": ("таймлапс*", "ускоренн* съёмк*", "ускоренн* съемк*")},
        camera="locked-off time-lapse",
    ),
    Cue(
        {"en": ("orbit*", "360", "circling", "revolving around", "spinning around"),
         "ru": ("облёт*", "облет*", "вокруг", "по кругу")},
        camera="slow orbit around the subject",
    ),
    Cue(
        {
            "en": ("run", "runs", "running", "chase*", "chasing", "race", "racing", "riding",
                   "rides", "driving", "drives", "gallop*", "sprint*", "follow*", "surfing",
                   "skiing", "skateboard*", "flying"),
            "ru": ("бежит", "бегут", "бегает", "бегущ*", "бегом", "мчит*", "мчащ*", "гонк*",
                   "погон*", "едет", "едут", "скач*", "несётся", "несется", "серф*",
                   "катается", "летит", "летят", "летящ*"),
        },
        camera="smooth tracking shot following the subject",
    ),
    Cue(
        {"en": ("handheld", "hand-held", "documentary", "vlog*", "pov", "first-person",
                "first person", "gopro"),
         "ru": ("с рук", "документальн*", "влог*", "от первого лица")},
        camera="handheld camera with a natural sway",
    ),
    Cue(
        {
            "en": ("portrait", "face", "faces", "close-up", "closeup", "close up", "eyes",
                   "smile*", "smiling", "headshot", "selfie"),
            "ru": ("портрет*", "лицо", "лица", "лицом", "лице", "глаз*", "улыб*",
                   "крупн* план*", "селфи"),
        },
        camera="slow push-in",
        lens="85 mm lens, shallow depth of field, close-up",
    ),
    Cue(
        {
            "en": ("food", "coffee", "tea", "cake", "dish", "meal", "dessert", "pizza",
                   "burger", "sushi", "cocktail*", "drink*", "latte", "espresso", "chocolate",
                   "fruit*", "breakfast", "pastry", "croissant*"),
            "ru": ("еда", "еды", "блюд*", "кофе", "чай", "чая", "чашк*", "торт*", "десерт*",
                   "пицц*", "бургер*", "суши", "коктейл*", "напит*", "шоколад*", "фрукт*",
                   "завтрак*", "выпечк*", "круассан*"),
        },
        camera="slow macro slide",
        lens="100 mm macro lens, extreme close-up",
        light="warm soft window light",
    ),
    Cue(
        {"en": ("macro", "insect*", "bee", "bees", "butterfl*", "ladybug*", "dew", "dewdrop*",
                "raindrop*", "water drop*"),
         "ru": ("макро*", "насеком*", "пчел*", "пчёл*", "бабочк*", "божь* коровк*", "роса",
                "росы", "капл*")},
        camera="slow macro slide",
        lens="100 mm macro lens, extreme close-up",
    ),
    Cue(
        {
            "en": ("product", "bottle", "perfume", "wristwatch", "sneaker*", "smartphone",
                   "packshot", "commercial", "advert*", "ad for"),
            "ru": ("товар*", "продукт*", "флакон*", "духи", "духов", "часы", "кроссовк*",
                   "смартфон*", "реклам*"),
        },
        camera="slow turntable orbit around the product",
        lens="50 mm lens, crisp focus",
        light="clean softbox studio light",
        style="premium commercial look",
    ),
    Cue(
        {
            "en": ("neon*", "cyberpunk*", "night city", "city at night", "city by night",
                   "streets at night", "nightlife", "blade runner"),
            "ru": ("неон*", "киберпанк*", "ночн* город*", "город* ночью", "ночн* улиц*",
                   "улиц* ночью"),
        },
        light="neon light glowing on wet streets",
        atmosphere="rain-slicked reflections",
    ),
    Cue(
        {"en": ("sunset*", "sunrise*", "dusk", "dawn", "golden hour", "sundown",
                "evening sun"),
         "ru": ("закат*", "рассвет*", "заря", "зари", "зарю", "заре", "золот* час*")},
        light="warm golden-hour light",
    ),
    Cue(
        {"en": ("night*", "midnight", "moon*", "starry", "starlit"),
         "ru": ("ноч*", "полноч*", "луна", "луны", "луной", "лунн*", "звёздн*", "звездн*")},
        light="moonlit night light with cool blue tones",
    ),
    Cue(
        {"en": ("storm*", "thunder*", "lightning", "hurricane", "tornado"),
         "ru": ("гроз*", "шторм*", "буря", "бури", "бурю", "молни*", "ураган*", "торнадо")},
        light="dramatic storm light with flashes of lightning",
        atmosphere="dark churning clouds",
    ),
    Cue(
        {"en": ("rain", "rainy", "raining", "rainfall", "drizzle", "downpour", "monsoon"),
         "ru": ("дожд*", "ливень", "ливн*", "ливне")},
        light="soft overcast light",
        atmosphere="falling rain on wet, reflective surfaces",
    ),
    Cue(
        {"en": ("snow*", "blizzard", "winter*", "frost*", "icy"),
         "ru": ("снег*", "снеж*", "зим*", "метел*", "метель", "вьюг*", "мороз*")},
        light="soft diffused winter light",
        atmosphere="gently falling snow",
    ),
    Cue(
        {"en": ("space", "outer space", "galaxy", "galaxies", "planet*", "nebula*",
                "astronaut*", "cosmos", "spaceship*"),
         "ru": ("космос*", "космическ*", "галактик*", "планет*", "астронавт*", "космонавт*",
                "туманност*")},
        light="cold starlight",
        atmosphere="star-filled depths of space",
    ),
    Cue(
        {"en": ("fog", "foggy", "mist", "misty", "haze", "hazy"),
         "ru": ("туман", "тумана", "тумане", "туманом", "туманный", "туманное", "туманная",
                "туманном", "туманную", "дымк*", "мгла", "мглы", "мгле")},
        light="soft hazy light",
        atmosphere="drifting mist",
    ),
    Cue(
        {"en": ("forest*", "woods", "jungle*", "trees", "rainforest*"),
         "ru": ("лес", "леса", "лесу", "лесом", "лесн*", "джунгл*", "чащ*", "деревьев",
                "тайг*")},
        light="dappled sunlight through the canopy",
        atmosphere="lush forest with light haze between the trunks",
    ),
    Cue(
        {"en": ("underwater", "under water", "coral*", "reef*", "scuba", "diving"),
         "ru": ("под водой", "подводн*", "корал*", "риф*")},
        light="shafts of sunlight rippling through the water",
        atmosphere="floating particles in clear blue water",
    ),
    Cue(
        {"en": ("ocean*", "sea", "seas", "seaside", "beach*", "waves", "surf", "coast*",
                "shore*"),
         "ru": ("море", "моря", "морю", "морем", "морск*", "океан*", "пляж*", "волн*",
                "берег*", "побереж*")},
        atmosphere="ocean waves rolling in, sea spray in the air",
    ),
    Cue(
        {
            "en": ("city", "cities", "street*", "downtown", "skyline*", "skyscraper*", "urban",
                   "metropolis", "miami", "new york", "tokyo", "paris", "london", "dubai",
                   "moscow"),
            "ru": ("город*", "улиц*", "мегаполис*", "небоскрёб*", "небоскреб*", "москв*",
                   "майами", "нью-йорк*", "токио", "париж*", "лондон*", "дубай*"),
        },
        lens="wide 24 mm lens",
        atmosphere="bustling city atmosphere",
    ),
    Cue(
        {"en": ("mountain*", "peak*", "alps", "valley", "cliff*", "canyon*", "hills"),
         "ru": ("гора", "горы", "гору", "горах", "горн*", "вершин*", "скал*", "ущель*",
                "долин*", "каньон*")},
        lens="wide-angle 24 mm lens",
        atmosphere="vast mountain vista, crisp clear air",
    ),
    Cue(
        {"en": ("desert*", "dune*", "sahara"), "ru": ("пустын*", "дюн*", "бархан*")},
        light="harsh bright sunlight",
        atmosphere="heat shimmer over rolling dunes",
    ),
    Cue(
        {"en": ("fire", "campfire", "bonfire", "candle*", "fireplace", "flame*", "embers"),
         "ru": ("огонь", "огня", "огнём", "огнем", "костёр", "костер", "костр*", "свеч*",
                "камин*", "плам*")},
        light="warm flickering firelight",
        atmosphere="drifting embers",
    ),
    Cue(
        {"en": ("anime", "manga", "ghibli"), "ru": ("аниме", "манг*", "гибли")},
        style="anime style, hand-drawn cel shading, vibrant colours",
    ),
    Cue(
        {"en": ("cartoon*", "pixar", "disney", "3d animation", "animated", "claymation"),
         "ru": ("мульт*", "пиксар*", "дисней*")},
        style="stylised 3D cartoon look, playful colours",
    ),
    Cue(
        {
            "en": ("vintage", "retro", "old film", "old-school", "film grain", "16mm", "8mm",
                   "super 8", "vhs", "70s", "80s", "90s", "1970s", "1980s", "1990s",
                   "nostalgi*"),
            "ru": ("ретро", "винтаж*", "старин*", "плёнк*", "пленк*", "ностальг*", "70-х",
                   "80-х", "90-х"),
        },
        style="vintage film look, soft 16 mm film grain",
    ),
    Cue(
        {"en": ("noir", "black and white", "black-and-white", "b&w", "monochrome"),
         "ru": ("нуар*", "чёрно-бел*", "черно-бел*", "монохром*")},
        style="black-and-white film noir look, high contrast",
    ),
    Cue(
        {"en": ("watercolor*", "watercolour*", "oil painting", "painterly"),
         "ru": ("акварел*", "живопис*", "маслом")},
        style="painterly watercolour look",
    ),
    Cue({"en": ("pixel art", "8-bit"), "ru": ("пиксел*", "пиксель*")}, style="pixel-art style"),
    Cue(
        {"en": ("fantasy", "magic*", "fairy*", "dragon*", "enchanted", "wizard*"),
         "ru": ("сказк*", "сказочн*", "волшеб*", "магич*", "магия", "дракон*", "фэнтези",
                "фентези", "эльф*")},
        style="epic fantasy look",
    ),
)  # fmt: skip

DEFAULT_LOOK: dict[str, str] = {
    "camera": "slow dolly-in",
    "lens": "35 mm lens",
    "light": "natural soft light",
    "atmosphere": "subtle natural motion",
    "style": "cinematic, photoreal",
}
# How many cues each slot takes; two atmospheres ("snow" and "forest") read well together.
SLOT_LIMITS: dict[str, int] = {"camera": 1, "lens": 1, "light": 1, "atmosphere": 2, "style": 2}

# What the LLM is told about the frame; anything else the caller passes is not sent.
SHAPE_HINTS: dict[str, str] = {
    "9:16": "vertical 9:16",
    "16:9": "widescreen 16:9",
    "1:1": "square 1:1",
}


# A story's shots, in order: the opening, the middle beats (taken in turn), and the closing. Each
# beat leads its shot's prompt; the subject and look follow. Models read English best, and the
# crafted look is English too, so the beats are English for every language.
STORY_OPENING = "Opening wide establishing shot."
STORY_MIDDLES: tuple[str, ...] = (
    "Medium shot, the action unfolds.",
    "Close-up on the details.",
    "Tracking shot following the movement.",
    "Low-angle shot, a sense of scale.",
    "Over-the-shoulder shot, the scene from within.",
    "High aerial shot over the scene.",
)
STORY_CLOSING = "Closing shot, the camera slowly pulls back."
# Lead-ins of a reply that changes one shot ("shot 2: make it night"), dropped from its words.
SHOT_EDIT_LEAD_INS: tuple[str, ...] = (
    "make it", "make", "let it be", "change it to", "instead", "сделай", "пусть будет",
    "пусть", "поменяй на", "вместо этого",
)  # fmt: skip
