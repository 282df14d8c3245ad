"""The extractor's word lists, as data: answer phrases per language, "or" words, correction and
retraction cues, check marks, letter look-alikes, number words, ordinals and units.

Adding a language is adding rows here; the rules in ``commitments.py`` and ``rewrite.py`` read
these tables and never branch on a language.
"""

from __future__ import annotations

# Answer phrases rewritten to the English statement the rules read ("Ответ: B" -> "Answer: B").
# (language, regex, replacement). Regexes are case-insensitive; a phrase never eats the letter.
ANSWER_PHRASES: tuple[tuple[str, str, str], ...] = (
    ("ru", r"(?:окончательный|итоговый)\s+ответ", "final answer"),
    ("ru", r"правильный\s+(?:ответ|вариант)|верный\s+(?:ответ|вариант)", "correct answer"),
    ("ru", r"ответ", "answer"),
    ("ru", r"выбираю|выберу|выбор", "choose"),
    ("ru", r"вариант", "option"),
    ("ru", r"\s+будет\s+|\s+—\s+это\s+", " is "),
    ("zh", r"选项|選項", "option "),
    ("ar", r"الإجابة\s+النهائية", "final answer"),
    ("ar", r"الإجابة\s+الصحيحة|الجواب\s+الصحيح|الخيار\s+الصحيح", "correct answer"),
    ("ar", r"الإجابة|الجواب", "answer"),
    ("ar", r"الخيار", "option"),
    ("ar", r"\s+هي\s+|\s+هو\s+", " is "),
    ("hi", r"अंतिम\s+उत्तर", "final answer"),
    ("hi", r"सही\s+(?:उत्तर|विकल्प)", "correct answer"),
    ("hi", r"उत्तर", "answer"),
    ("hi", r"विकल्प", "option"),
    ("hi", r"\s*(?:है|हैं)\s*(?:।|$)", ". "),
    ("pt", r"resposta\s+final", "final answer"),
    ("pt", r"(?:a[ \t]+)?resposta\s+(?:correta|certa)|(?:a[ \t]+)?alternativa\s+correta|(?:a[ \t]+)?opção\s+correta",
     "correct answer"),
    ("pt", r"(?:a[ \t]+)?resposta", "answer"),
    ("pt", r"\s+é\s+(?:a[ \t]+)?(?:letra\s+|alternativa\s+|opção\s+)?", " is "),
    ("pt", r"alternativa|letra|opção", "option"),
    ("pt", r"escolho|escolheria", "choose"),
    ("tr", r"nihai\s+cevap|son\s+cevap", "final answer"),
    ("tr", r"doğru\s+(?:cevap|yanıt|seçenek|şık)", "correct answer"),
    ("tr", r"cevab[ıi]m|yanıtım", "my answer"),
    ("tr", r"cevap|yanıt", "answer"),
    ("tr", r"seçenek", "option"),
    ("vi", r"đáp\s+án\s+cuối\s+cùng|câu\s+trả\s+lời\s+cuối\s+cùng", "final answer"),
    ("vi", r"đáp\s+án\s+đúng|câu\s+trả\s+lời\s+đúng|phương\s+án\s+đúng|lựa\s+chọn\s+đúng|câu\s+đúng",
     "correct answer"),
    ("vi", r"đáp\s+án|câu\s+trả\s+lời", "answer"),
    ("vi", r"phương\s+án|lựa\s+chọn", "option"),
    ("vi", r"\s+là\s+", " is "),
    ("vi", r"(?<!\w)chọn(?!\w)", "choose"),
    ("es", r"respuesta\s+final", "final answer"),
    ("es", r"(?:la[ \t]+)?respuesta\s+correcta|(?:la[ \t]+)?opción\s+correcta", "correct answer"),
    ("es", r"(?:la[ \t]+)?respuesta", "answer"),
    ("es", r"\s+es\s+(?:la[ \t]+)?(?:opción\s+)?", " is "),
    ("fr", r"réponse\s+finale", "final answer"),
    ("fr", r"(?:la[ \t]+)?bonne\s+réponse|(?:la[ \t]+)?réponse\s+correcte", "correct answer"),
    ("fr", r"(?:la[ \t]+)?réponse", "answer"),
    ("fr", r"\s+est\s+(?:la[ \t]+)?(?:option\s+)?", " is "),
    ("de", r"endgültige\s+antwort", "final answer"),
    ("de", r"(?:die[ \t]+)?richtige\s+antwort", "correct answer"),
    ("de", r"(?:die[ \t]+)?antwort", "answer"),
    ("de", r"\s+ist\s+", " is "),
)
# suffixes glued to a letter: Turkish "B'dir", "C şıkkı"; Korean/Japanese particles are read by the CJK rule
LETTER_SUFFIXES = r"(?:['’](?:dir|dır|tir|tır|dur|dür|tur|tür|de|da)\b|\s+şıkkı\b|\s+seçeneği\b)"

# "X or Y": the connectives of every supported language (an offer of two letters is no answer)
OR_WORDS: tuple[str, ...] = (
    "or", "and", "either", "oder", "ou", "o", "или", "либо", "أو", "या", "अथवा", "또는", "이나", "または", "か",
    "veya", "ya da", "hoặc", "hay", "或者", "或", "还是", "和", "与",
)

# cues that take back what was said before them: the commitments before the last cue fall
CORRECTION_CUES: tuple[str, ...] = (
    r"wait(?:\s*,)?\s*(?:no|,)", r"no(?:\s*,)?\s*wait", r"wait\b", r"sorry(?:\s*,)?\s*(?:I\s+)?meant?",
    r"I\s+meant?\b", r"correction\s*:", r"on\s+second\s+thought", r"on\s+reflection", r"let\s+me\s+reconsider",
    r"scratch\s+that", r"I\s+take\s+(?:that|it)\s+back", r"I\s+was\s+wrong",
    r"(?:that|this)(?:'s|\s+is|\s+was)\s+wrong",
    r"make\s+that", r"(?:I\s+need\s+to|let\s+me|to)\s+correct\s+(?:this|that|myself|my\s+answer)",
    r"actually\b", r"\?\s*no\b", r"but\s+no\b", r"strike\s+that", r"never\s*mind",
    r"не\s*т?,?\s*подожд", r"точнее", r"исправл", r"на\s+самом\s+деле",
    r"不对", r"等等", r"更正", r"其实", r"抱歉[，,]?\s*(?:应该|应)", r"いや", r"訂正", r"잠깐", r"아니(?:요|다)?[,，]",
    r"na\s+verdade", r"corrigindo", r"aslında", r"düzeltme", r"thực\s+ra", r"à\s+không", r"en\s+realidad",
    r"en\s+fait", r"eigentlich", r"في\s+الواقع", r"बल्कि", r"माफ़\s+कीजिए",
)
# a retraction: after it the reply commits to nothing unless a letter follows
RETRACTIONS: tuple[str, ...] = (
    r"I'?m\s+not\s+sure", r"I\s+(?:don'?t|do\s+not)\s+know", r"I\s+(?:really\s+|honestly\s+)?can'?t\s+tell",
    r"disregard", r"(?:hmm+|um+|uh+),?\s+no\b",
    r"ignore\s+(?:that|my\s+(?:previous\s+)?answer)", r"不确定", r"不知道", r"わかりません", r"모르겠",
    r"не\s+знаю", r"не\s+уверен", r"não\s+sei", r"bilmiyorum", r"không\s+chắc", r"لا\s+أعرف", r"पता\s+नहीं",
)
# a statement made in passing or under a condition commits to nothing
HEDGES = (r"(?:\bif\b[^.\n]{0,60}"
          r"|\b(?:at\s+first|initially|first\s+(?:thought|guess|impression)|my\s+first|earlier\s+I|I\s+thought)\b"
          r"[^.\n]{0,40})$")

CHECK_YES = "✅✔✓☑🟢👍"
CHECK_NO = "❌✗✘✖⛔🚫🔴👎"
CHECK_WORDS_YES = r"(?:correct|right|true|yes|верно|правильно|correto|certo|doğru|đúng|صحيح|सही|正确|对|正しい|맞)"
CHECK_WORDS_NO = (r"(?:incorrect|wrong|false|no|not\s+correct|неверно|неправильно|errado|incorreto|yanlış|sai|خطأ|"
                  r"गलत|错误|错|不对|誤り|틀림|틀렸)")

# Cyrillic / Greek capitals that look like a Latin letter AND read as that same letter when a
# reply labels options in its own alphabet (А=A; Greek Α, Β, Ε, Ι are A, B, E, I both ways).
# Cyrillic В and Е are left out: В looks like B but is the third Russian label (C); Е is the sixth.
LOOKALIKES = {"А": "A", "С": "C", "Н": "H", "Α": "A", "Β": "B", "Ε": "E", "Ι": "I"}

NUMBER_WORDS: dict[str, float] = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "a hundred": 100,
    "a dozen": 12, "dozen": 12, "half a dozen": 6, "a couple of": 2, "a pair of": 2, "a score of": 20,
    "half": 0.5, "a half": 0.5, "one half": 0.5, "a third": 1 / 3, "one third": 1 / 3, "a quarter": 0.25,
    "one quarter": 0.25, "three quarters": 0.75, "two thirds": 2 / 3,
    # Chinese / Japanese
    "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10,
    # Korean (native counters)
    "하나": 1, "둘": 2, "셋": 3, "넷": 4, "다섯": 5, "여섯": 6,
    # Russian
    "один": 1, "одна": 1, "два": 2, "две": 2, "три": 3, "четыре": 4, "пять": 5, "шесть": 6, "семь": 7,
    "восемь": 8, "девять": 9, "десять": 10, "двенадцать": 12, "дюжина": 12,
    # Portuguese / Spanish
    "um": 1, "uma": 1, "dois": 2, "duas": 2, "três": 3, "quatro": 4, "cinco": 5, "seis": 6, "sete": 7,
    "uno": 1, "dos": 2, "tres": 3, "cuatro": 4, "siete": 7, "doze": 12, "doce": 12, "dúzia": 12, "docena": 12,
    # Turkish
    "bir": 1, "iki": 2, "üç": 3, "dört": 4, "beş": 5, "altı": 6, "yedi": 7, "sekiz": 8, "dokuz": 9, "on": 10,
    # Vietnamese
    "một": 1, "hai": 2, "ba": 3, "bốn": 4, "năm": 5, "sáu": 6, "bảy": 7,
    # Hindi / Arabic
    "दो": 2, "तीन": 3, "चार": 4, "पांच": 5, "पाँच": 5, "छह": 6,
    "اثنان": 2, "ثلاثة": 3, "أربعة": 4, "خمسة": 5, "ستة": 6,
}
# words that make a number word an ordinary word: "on" in Turkish is ten, in English a preposition
NUMBER_WORDS_LATIN_AMBIGUOUS = frozenset({"on", "bir", "ba", "hai", "um", "dos", "o", "one"})

# ordinal words -> 1-based position ("last" is resolved against the options)
ORDINALS: dict[str, int] = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "1st": 1, "2nd": 2, "3rd": 3,
    "4th": 4, "5th": 5, "6th": 6, "last": -1,
    "первый": 1, "второй": 2, "третий": 3, "четвёртый": 4, "четвертый": 4, "последний": -1,
    "primeira": 1, "segunda": 2, "terceira": 3, "quarta": 4, "última": -1,
    "第一": 1, "第二": 2, "第三": 3, "第四": 4, "最后": -1,
}

# units: factor to the unit's base, per dimension ("150 cm" is the option "1.5 m")
UNITS: dict[str, tuple[str, float]] = {
    "mm": ("m", 0.001), "cm": ("m", 0.01), "m": ("m", 1.0), "km": ("m", 1000.0), "meter": ("m", 1.0),
    "meters": ("m", 1.0), "metres": ("m", 1.0), "centimeters": ("m", 0.01), "kilometers": ("m", 1000.0),
    "g": ("g", 1.0), "kg": ("g", 1000.0), "grams": ("g", 1.0), "kilograms": ("g", 1000.0),
    "s": ("s", 1.0), "sec": ("s", 1.0), "seconds": ("s", 1.0), "min": ("s", 60.0), "minutes": ("s", 60.0),
    "h": ("s", 3600.0), "hours": ("s", 3600.0), "hour": ("s", 3600.0), "minute": ("s", 60.0),
    "ml": ("l", 0.001), "l": ("l", 1.0), "liters": ("l", 1.0), "litres": ("l", 1.0),
    "%": ("%", 1.0), "percent": ("%", 1.0), "per cent": ("%", 1.0),
    "$": ("$", 1.0), "dollars": ("$", 1.0), "dollar": ("$", 1.0), "bucks": ("$", 1.0), "cents": ("$", 0.01),
    "€": ("€", 1.0), "euros": ("€", 1.0), "euro": ("€", 1.0), "£": ("£", 1.0), "pounds": ("£", 1.0),
    "¥": ("¥", 1.0), "yuan": ("¥", 1.0), "元": ("¥", 1.0), "yen": ("¥", 1.0),
    "°": ("°", 1.0), "degrees": ("°", 1.0), "degree": ("°", 1.0),
}
