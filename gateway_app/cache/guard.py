"""The second check after a vector match: do the two prompts ask the same thing?

Embeddings place "enable 2FA" next to "disable 2FA", "10 USD to EUR" next to
"10 EUR to USD" and "approve the request" next to "deny the request" (0.85-0.99
with all-MiniLM-L6-v2, above many true paraphrases), so cosine similarity alone
cannot decide. This check compares the two prompts word by word (a fraction
of a millisecond, no model) and refuses a match when they differ in what embeddings blur:

- **numbers** (digits and number words, with the unit they count: "two weeks"
  is not "two days") must be the same multiset, **named
  things** (capitalised words past the first, acronyms, identifiers, quoted
  strings) the same set, **negation** the same parity, and no word of an
  antonym pair may face its opposite (enable/disable, include/exclude, ...);
- **polarity prefixes**: "enforceable" against "unenforceable", "paid" against
  "unpaid" (un-, in-, im-, il-, ir-, dis-, non-), "overpaid" against "underpaid",
  "hypertension" against "hypotension"; "left unchanged" is "not changed" and
  "even if" drops the condition "if" sets;
- **roles**: the same content words in another order are refused ("debit A and
  credit B" / "credit A and debit B", "X locally but Y in CI" / the reverse),
  and so are two words exchanged wherever they occur ("join *orders* to
  *customers* so every *order* is kept" / the reverse), except a single phrase
  moved without crossing a direction word or a negation ("At sea level, what
  ..." / "What ... at sea level?") and a compound against its prepositional
  form ("a Git branch" / "a branch in Git").

Two more findings are not refusals but evidence for the judge
(:mod:`gateway_app.cache.judge`), which weighs every pair that survives:

- **substitution**: after aligning the content words (stemmed, framing such as
  "how do I", "can you", "tell me" removed, known equivalents matched), a
  short span replaced inside otherwise equal text ("approve" -> "deny",
  "sprained" -> "broken", "lisinopril" -> "losartan");
- **qualifier**: content words on one side only, with nothing in their place
  on the other ("reset my password" / "... on the mobile app", "summarise this
  complaint" / "... and suggest a reply"), unless they only say how the
  request is phrased ("what *causes* X", "*using* CSS", "differ *from*").

Both used to be refusals; on pairs written by authors the rules were not
developed on, a fifth to a quarter of the paraphrases tripped them, while the
judge tells most of those apart from the misses. The alignment (*aligned*: the
same content words, only framing differs; else *reworded*) is evidence too.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path
from typing import Literal

import snowballstemmer

_WORD = re.compile(
    r"[A-Za-z][A-Za-z0-9_'\-]*|\d+[A-Za-z_][A-Za-z0-9_]*|\d+(?:[.,]\d+)*%?|\"[^\"]+\"|'[^']+'|`[^`]+`"
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*%?")
_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "thirteen": "13", "fourteen": "14", "fifteen": "15", "sixteen": "16", "seventeen": "17",
    "eighteen": "18", "nineteen": "19", "sixty": "60", "seventy": "70", "eighty": "80",
    "ninety": "90", "fourth": "4th", "fifth": "5th", "sixth": "6th", "seventh": "7th",
    "eighth": "8th", "ninth": "9th", "tenth": "10th", "quadruple": "4x",
    "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "hundred": "100",
    "thousand": "1000", "million": "1000000", "billion": "1000000000", "half": "0.5",
    "first": "1st", "second": "2nd", "third": "3rd", "single": "1", "double": "2x",
    "twice": "2x", "triple": "3x", "dozen": "12",
}  # fmt: skip
_NEGATIONS = {
    "not", "no", "never", "none", "nothing", "nobody", "neither", "nor", "without",
    "cannot", "can't", "don't", "doesn't", "didn't", "isn't", "aren't", "wasn't",
    "weren't", "won't", "wouldn't", "shouldn't", "couldn't", "mustn't", "haven't",
    "hasn't", "hadn't", "avoid", "stop", "unless", "except", "lack", "prevent",
}  # fmt: skip
_PHRASAL_VERBS = ("log", "sign", "check", "opt", "plug", "zoom", "scale", "move", "roll")


def _phrasal(*particles: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """One axis of phrasal verbs: "log in" / "log out", "opted into" / "opted out", ..."""
    sides = []
    for side in particles:
        forms = []
        for verb in _PHRASAL_VERBS:
            for form in {verb, f"{verb}s", f"{verb}ed", f"{verb}ing", f"{verb}{verb[-1]}ed",
                         f"{verb}{verb[-1]}ing"}:  # fmt: skip
                forms += [f"{form}{sep}{particle}" for particle in side for sep in " -"]
        sides.append(tuple(forms))
    return tuple(sides)


# Each group is one axis with two or more sides; where both texts use words of
# an axis, they must use the same sides of it ("lower" and "reduce" are one side).
_ANTONYMS: list[tuple[tuple[str, ...], ...]] = [
    (("enable", "activate", "turn on"), ("disable", "deactivate", "turn off")), (("on",), ("off",)),
    (("increase", "raise", "higher", "high"), ("decrease", "reduce", "lower", "low")),
    (("add", "insert"), ("remove", "delete")),
    (("allow", "permit"), ("deny", "block", "forbid", "ban", "prohibit", "disallow")),
    (("encrypt",), ("decrypt",)), (("upload",), ("download",)), (("buy",), ("sell",)),
    (("before",), ("after",)), (("min", "minimum"), ("max", "maximum")),
    (("import",), ("export",)), (("open",), ("close",)), (("start",), ("stop", "end")),
    (("include",), ("exclude",)), (("lock",), ("unlock",)), (("true",), ("false",)),
    (("input",), ("output",)), (("encode",), ("decode",)), (("compress",), ("decompress",)),
    (("install",), ("uninstall",)), (("subscribe",), ("unsubscribe",)),
    (("follow",), ("unfollow",)), (("connect",), ("disconnect",)), (("push",), ("pull",)),
    (("send",), ("receive",)), (("read",), ("write",)), (("left",), ("right",)),
    (("up",), ("down",)), (("north",), ("south",)), (("east",), ("west",)), (("hot",), ("cold",)),
    (("fast", "faster"), ("slow", "slower")), (("best",), ("worst",)), (("better",), ("worse",)),
    (("more",), ("less", "fewer")), (("most",), ("least",)),
    (("large", "larger", "big", "bigger", "largest"), ("small", "smaller", "smallest")),
    (("advantages", "pros", "benefits"), ("disadvantages", "cons", "risks", "drawbacks")),
    (("ascending",), ("descending",)), (("first",), ("last",)), (("oldest",), ("newest",)),
    (("old",), ("new",)), (("legal",), ("illegal",)), (("safe",), ("unsafe", "dangerous")),
    (("valid",), ("invalid",)), (("public",), ("private",)), (("inner",), ("outer",)),
    (("join",), ("leave",)), (("win",), ("lose",)),
    (("accept", "approve"), ("reject", "decline", "refuse")),
    (("agree",), ("disagree",)), (("like",), ("dislike",)),
    (("sync", "synchronous"), ("async", "asynchronous")), (("client",), ("server",)),
    (("plus",), ("minus",)), (("multiply",), ("divide",)), (("sum",), ("difference",), ("product",)),
    (("yesterday",), ("today",), ("tomorrow",)), (("morning",), ("evening",), ("night",)),
    (("male",), ("female",)), (("men",), ("women",)), (("boy",), ("girl",)),
    (("husband",), ("wife",)), (("vegan",), ("vegetarian",)), (("senior",), ("junior",)),
    (("pass",), ("fail",)), (("grant",), ("refuse", "revoke")), (("credit",), ("debit",)),
    (("keep", "retain", "preserve"), ("remove", "drop", "discard", "delete")),
    (("continue", "resume"), ("stop", "pause", "halt")), (("support",), ("oppose",)),
    (("for",), ("against",)), (("praise",), ("criticise", "criticize")),
    (("mutable",), ("immutable",)), (("renew",), ("cancel", "lapse")),
    (("with",), ("without",)), (("required", "mandatory"), ("optional",)),
    (("expand",), ("collapse",)), (("attach",), ("detach",)), (("show",), ("hide",)),
    _phrasal(("in", "into"), ("out",)), _phrasal(("up",), ("down",)),
]  # fmt: skip
_DIRECTION_MARKERS = {"to", "into", "from", "than", "vs", "versus", "over", "onto"}
_STOPWORDS = {
    "a", "an", "the", "my", "your", "our", "their", "its", "this", "that", "these", "those",
    "is", "are", "was", "were", "be", "do", "does", "did", "how", "what", "which", "who",
    "why", "when", "where", "i", "you", "we", "me", "can", "could", "should", "would",
    "please", "of", "in", "for", "with", "and", "or", "it", "some", "any", "way", "ways",
}  # fmt: skip
# Words that frame a request without changing what it asks: function words and
# the ways people phrase a question or an instruction. Removed before alignment.
_FRAMING = _STOPWORDS | {
    "am", "been", "being", "will", "shall", "may", "might", "must", "have", "has", "had",
    "there", "here", "his", "her", "them", "they", "he", "she", "us", "whom", "whose",
    "on", "at", "by", "about", "as", "if", "so", "then", "just", "also", "really", "actually",
    "tell", "explain", "describe", "give", "show", "provide", "help", "want", "need", "know",
    "let", "like", "kindly", "possible", "steps", "step", "process", "procedure", "method",
    "what's", "how's", "i'm", "i'd", "i've", "it's", "that's", "there's", "you're",
    "s", "d", "ll", "ve", "re", "m", "t", "e.g", "etc", "to", "into", "between",
    "thanks", "thank", "thx", "hi", "hello", "hey", "pls", "plz",
}  # fmt: skip
FRAMING_WORDS = frozenset(_FRAMING)
# General-purpose equivalents (not fitted to any pair set): words people swap for
# one another in the same request. Only used to *accept* a substitution; the
# opposites are never listed here.
_SYNONYMS = [
    ("change", "update", "modify", "edit", "alter", "adjust"),
    ("fix", "solve", "resolve", "repair", "troubleshoot"),
    ("remove", "delete", "erase", "eliminate"),
    ("make", "create", "build", "generate", "produce"),
    ("write", "draft", "compose", "create", "prepare"),
    ("explain", "describe", "clarify", "define"),
    ("start", "begin", "launch"), ("buy", "purchase"), ("show", "display", "list"),
    ("big", "large", "huge"), ("small", "little", "tiny"), ("quick", "fast", "rapid"),
    ("error", "issue", "problem", "bug"), ("app", "application", "program"),
    ("doc", "document", "documentation"), ("picture", "image", "photo"),
    ("movie", "film"), ("ocean", "sea"), ("kid", "child", "children", "kids"),
    ("job", "role", "position"), ("employee", "staff", "worker", "personnel"),
    ("customer", "client"), ("sick", "ill"), ("illness", "disease", "sickness"),
    ("doctor", "physician"), ("medicine", "medication", "drug"), ("lawyer", "attorney"),
    ("contract", "agreement"), ("verbal", "oral"), ("need", "require"), ("use", "utilize"),
    ("help", "assist"), ("answer", "reply", "respond", "response"), ("email", "e-mail"),
    ("wifi", "wi-fi"), ("usual", "typical", "normal", "common"), ("cost", "price"),
    ("brief", "short"), ("summary", "summarize", "summarise"), ("get", "obtain"),
    ("find", "locate"), ("check", "verify"), ("cancel", "terminate"), ("car", "automobile"),
    ("mistake", "error"), ("choose", "pick", "select"), ("shut", "close"),
    ("configure", "set", "setup", "set-up"), ("phone", "telephone"), ("mom", "mother"),
    ("dad", "father"), ("grandma", "grandmother"), ("grandpa", "grandfather"),
    ("contact", "reach"), ("see", "view"), ("handle", "deal"), ("allow", "permit", "let"),
    ("plot", "chart", "visualize"), ("main", "key", "primary"), ("note", "message"),
    ("make", "prepare", "cook"), ("request", "ask"), ("include", "contain"),
    ("remove", "drop", "strip"), ("trigger", "fire"), ("each", "every", "per"),
    ("daily", "every day"), ("annual", "yearly"), ("monthly", "every month"),
    ("weekly", "every week"), ("often", "frequently"), ("finish", "complete"),
    ("trip", "journey", "travel"), ("revert", "undo", "rollback"),
    ("find", "identify", "detect", "discover", "determine"), ("person", "people", "individual"),
    ("company", "business", "firm", "organization", "organisation"),
    ("troubleshoot", "debug", "diagnose"), ("summary", "overview", "recap"),
    ("cost", "spend", "spending"), ("reduce", "cut", "lower", "decrease", "lessen"),
    ("increase", "raise", "boost"), ("folder", "directory"), ("apartment", "flat"),
    ("parcel", "package"), ("detail", "information", "info"), ("symptom", "sign"),
    ("talk", "speak"), ("tip", "advice", "suggestion"), ("guide", "tutorial"),
    ("ill", "unwell"), ("amount", "quantity"), ("fridge", "refrigerator"), ("tv", "television"),
    ("colleague", "coworker", "co-worker"), ("hire", "recruit"), ("quit", "resign"),
    ("law", "legislation"), ("sue", "litigate"), ("simple", "basic"),
    ("vaccine", "vaccination", "jab"), ("relieve", "relief", "ease"),
    # Abbreviations people write for the full word.
    ("cert", "certificate"), ("config", "configuration"), ("repo", "repository"),
    ("db", "database"), ("env", "environment"), ("auth", "authentication"),
    ("admin", "administrator"), ("prod", "production"), ("dev", "development"),
    ("stats", "statistics"), ("temp", "temporary"), ("num", "number"), ("rep", "representative"),
    ("ad", "advert", "advertisement"), ("msg", "message"), ("pwd", "password"),
    ("approx", "approximately"), ("dept", "department"), ("mgr", "manager"),
]  # fmt: skip
# Words that say how a request is phrased, not what it is about: one side may
# have them where the other has nothing ("what *causes* X" / "the causes of X",
# "*using* CSS" / "with CSS", "how do X differ *from* Y"). Any other content word
# present on one side only narrows or widens the request (a qualifier: "... on
# the mobile app", "... for a child", "... and suggest a reply").
_LIGHT = {
    "make", "get", "use", "cause", "happen", "do", "done", "list", "give", "show", "create",
    "calculate", "compute", "recommend", "suggest", "provide", "mean", "think", "try", "find",
    "write", "draft", "people", "someone", "somebody", "something", "thing", "things", "kind",
    "idea", "ideas", "usually", "typically", "commonly", "common", "generally", "normally",
    "exactly", "simply", "basically", "from", "out", "onto", "over", "away", "back", "off",
    "under", "within", "through", "via", "across", "upon", "take", "got", "gotten", "command",
    "purpose", "effective", "effectively", "properly", "correctly", "easily", "reason",
    "allowed", "able",
}  # fmt: skip
# What a number counts: "two *weeks*" is not "two *days*" (the number alone matches).
_UNITS = {
    "second", "minute", "hour", "day", "week", "month", "year", "decade", "ms", "sec", "min",
    "hr", "kilometer", "kilometre", "km", "mile", "meter", "metre", "cm", "mm", "foot", "feet",
    "inch", "kg", "kilogram", "gram", "mg", "milligram", "mcg", "microgram", "pound", "lb",
    "ounce", "oz", "ml", "milliliter", "millilitre", "liter", "litre", "gallon", "byte", "kb",
    "mb", "gb", "tb", "kib", "mib", "gib", "tib", "dollar", "euro", "cent", "percent", "degree",
    "celsius", "fahrenheit", "page", "word", "sentence", "paragraph", "line", "bullet", "point",
    "item", "row", "column", "character", "slide", "step", "core", "node", "replica", "user",
    "seat", "employee", "person", "people", "time",
}  # fmt: skip
_POLARITY_PREFIXES = ("un", "in", "im", "il", "ir", "dis", "non", "non-", "de")
_OPPOSITE_PREFIXES = (
    ("over", "under"), ("hyper", "hypo"), ("pre", "post"), ("up", "down"), ("in", "out"),
    ("inter", "intra"), ("max", "min"), ("im", "ex"),
)  # fmt: skip
# A phrase moved across one of these changes who does what to whom.
_ROLE_ANCHORS = frozenset({"from", "than", "onto", "over", "vs", "versus", "not"})
# "a recipe for pancakes" is "a pancake recipe"; "JSON to YAML" is not "YAML to JSON".
_COMPOUND_LINKS = frozenset({"of", "for", "about", "in", "on", "at"})
_DETERMINERS = frozenset({"a", "an", "the", "my", "your", "our", "their", "its", "this", "that"})
_NEGATION_TOKEN = "not"
# "unchanged", "unused", "unsigned": not changed, used, signed ("under-" and
# "uni-" words are not negations).
_NEGATED_PARTICIPLE = re.compile(r"un(?!der|i)[a-z]{3,}ed")
_PARTICLES = frozenset({"from", "out", "onto", "over", "away", "back", "off"})
_SPELLING = [
    (re.compile(r"is(e|es|ed|ing|ation|ations)$"), r"iz\1"),  # summarise -> summarize
    (re.compile(r"ys(e|es|ed|ing)$"), r"yz\1"),  # analyse -> analyze
    (re.compile(r"our(s|ed|ing|ite|ites)?$"), r"or\1"),  # colour -> color
    (re.compile(r"tre(s)?$"), r"ter\1"),  # centre -> center
]
_CONTRACTIONS = {"can't": "can not", "won't": "will not", "cannot": "can not", "n't": " not"}
# Phrasal verbs that mean one word: aligned with it rather than seen as a swap.
_PHRASES = [
    (re.compile(r"\b(?:turn|switch)(?:ing|ed|s)? on\b"), "enable"),
    (re.compile(r"\b(?:turn|switch)(?:ing|ed|s)? off\b"), "disable"),
    (re.compile(r"\bset(?:ting|s)? up\b"), "configure"),
    (re.compile(r"\bget(?:ting|s)? rid of\b"), "remove"),
    (re.compile(r"\broll(?:ing|ed|s)? back\b"), "revert"),
    (re.compile(r"\bfind(?:ing|s)? out\b"), "find"),
    # "do X *even if* Y" drops the condition "do X if Y" sets: its opposite.
    (re.compile(r"\beven if\b|\bregardless of(?: whether)?\b"), "regardless"),
    # "the best way to X" asks for X: the judgement words frame the request.
    (
        re.compile(
            r"\b(?:best|right|proper|correct|easiest|simplest|recommended|good|effective)"
            r" (?:way|ways|method|methods|approach|approaches)\b"
        ),
        "way",
    ),
]
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\n]\s*)([A-Z][a-z]+)")
_ANTONYM_INDEX: dict[str, list[tuple[int, int, str]]] = {}
for _group, _sides in enumerate(_ANTONYMS):
    for _side, _words in enumerate(_sides):
        for _w in _words:
            _ANTONYM_INDEX.setdefault(_w.split()[0], []).append((_group, _side, _w))
_STEMMER = snowballstemmer.stemmer("english")


@lru_cache(maxsize=65536)
def _normalise(word: str) -> str:
    # The pure-Python stemmer costs ~50 us a word; prompts reuse a small vocabulary.
    for pattern, replacement in _SPELLING:
        word = pattern.sub(replacement, word)
    return str(_STEMMER.stemWord(word))


_STEM_GROUPS: dict[str, set[int]] = {}
for _group, _words in enumerate(_SYNONYMS):
    for _w in _words:
        _STEM_GROUPS.setdefault(_normalise(_w), set()).add(_group)
# The negation words and their inflections ("stopped", "avoids"): matched as words,
# not stems, since "exceptions" stems to "except".
_NEGATION_FORMS = {
    form
    for w in _NEGATIONS
    if "'" not in w
    for form in (w, f"{w}s", f"{w}ed", f"{w}ing", f"{w}{w[-1]}ed", f"{w}{w[-1]}ing")
} | {"regardless"}
_LIGHT_STEMS = {_normalise(w) for w in _LIGHT}
_UNIT_STEMS = {_normalise(w) for w in _UNITS}
_FRAMING_STEMS = {_normalise(w) for w in _FRAMING}


class Features:
    """The lexical facts of one prompt the guard compares (computed once per text)."""

    __slots__ = (
        "antonyms",
        "content",
        "directions",
        "entities",
        "entity_order",
        "gaps",
        "negations",
        "numbers",
        "plain",
        "quantities",
        "stems",
        "words",
    )

    def __init__(self, text: str) -> None:
        tokens = _WORD.findall(text)
        lowered = [t.lower() for t in tokens]
        starts = {m.start(1) for m in _SENTENCE_START.finditer(text)}
        numbers: Counter[str] = Counter()
        entities: list[str] = []
        plain: set[str] = set()  # the words that are not named things
        negations = 0
        antonyms: dict[int, set[str]] = {}
        position = 0
        for index, (token, low) in enumerate(zip(tokens, lowered, strict=True)):
            position = text.find(token, position)
            if token[0] in "\"'`" and len(token) > 2:
                entities.append(low.strip("\"'`"))
            elif _NUMBER.fullmatch(token):
                numbers[token.replace(",", "")] += 1
            elif low in _NUMBER_WORDS:
                numbers[_NUMBER_WORDS[low]] += 1
            elif "-" in low and any(part in _NUMBER_WORDS for part in low.split("-")):
                numbers.update(_NUMBER_WORDS[p] for p in low.split("-") if p in _NUMBER_WORDS)
            elif (
                (token[0].isupper() and position not in starts and not _pronoun(low))
                or (len(token) > 1 and token.isupper())
                or any(c.isdigit() for c in token)
                or "_" in token
            ):
                entities.append(low.replace("\u2019", "'").removesuffix("'s"))
            else:
                plain.add(low.replace("\u2019", "'").removesuffix("'s"))
            if low in _NEGATIONS or low.endswith("n't"):
                negations += 1
            for group, side, word in {
                *_ANTONYM_INDEX.get(low, ()),
                *_ANTONYM_INDEX.get(_stem(low), ()),
            }:
                if " " not in word or f"{low} {_next_word(lowered, index)}" == word:
                    antonyms.setdefault(group, set()).add(side)
            position += len(token)
        self.numbers = numbers
        self.entities = frozenset(entities)
        self.entity_order = tuple(dict.fromkeys(entities))
        self.plain = frozenset(plain)
        self.words = tuple(part for low in lowered for part in low.split("-") if part)
        self.negations = negations
        self.antonyms = antonyms
        content = [w for w in lowered if w not in _STOPWORDS]
        directions = set()
        for i, word in enumerate(content):
            if word in _DIRECTION_MARKERS and 0 < i < len(content) - 1:
                directions.add((content[i - 1], content[i + 1]))
        self.directions = frozenset(directions)
        self.content = tuple(content)
        self.stems, self.gaps = _content_stems(text)
        quantities: dict[str, set[str]] = {}
        for number, unit in itertools.pairwise(self.stems):
            if number[:1].isdigit() and unit in _UNIT_STEMS:
                quantities.setdefault(number, set()).add(unit)
        self.quantities = quantities


def _content_stems(text: str) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """The request's content words in order: stemmed, framing dropped, negation as ``not``.

    Also, for each content word, the framing words dropped just before it (how
    it was linked to the previous one: "branch *in* Git" against "Git branch").
    """
    lowered = text.lower().replace("\u2019", "'")
    for contraction, expansion in _CONTRACTIONS.items():
        lowered = lowered.replace(contraction, expansion)
    for phrase, word in _PHRASES:
        lowered = phrase.sub(word, lowered)
    stems: list[str] = []
    gaps: list[tuple[str, ...]] = []
    words: list[str] = []
    for token in _WORD.findall(lowered):
        token = token.strip("\"'`").removesuffix("'s").strip("'")
        words.extend(part for part in token.split("-") if part)
    dropped: list[str] = []
    for token in words:
        if _NEGATED_PARTICIPLE.fullmatch(token):
            # "leave the list unchanged" = "do not change the list".
            stems.append(_NEGATION_TOKEN)
            gaps.append(tuple(dropped))
            dropped = []
            token = token[2:]
        stem = _NUMBER_WORDS.get(token) or _normalise(token)
        if token in _NEGATION_FORMS:
            stem = _NEGATION_TOKEN
        elif token not in _NUMBER_WORDS and (stem in _FRAMING_STEMS or token in _FRAMING):
            dropped.append(token)
            continue
        stems.append(stem)
        gaps.append(tuple(dropped))
        dropped = []
    return tuple(stems), tuple(gaps)


def _pronoun(word: str) -> bool:
    # "I", "I'm", "I've", "I'd", "I'll": capitalised, never a named thing.
    word = word.replace("\u2019", "'")
    return word in _STOPWORDS or word == "i" or word.startswith("i'")


def _next_word(words: list[str], index: int) -> str:
    return words[index + 1] if index + 1 < len(words) else ""


def _stem(word: str) -> str:
    # Enough morphology for the antonym table: enables/enabled/enabling -> enable.
    for suffix, replacement in (("ing", "e"), ("ed", "e"), ("es", "e"), ("s", ""), ("ing", "")):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            candidate = word[: -len(suffix)] + replacement
            if candidate in _ANTONYM_INDEX:
                return candidate
            if word[: -len(suffix)] in _ANTONYM_INDEX:
                return word[: -len(suffix)]
    return word


Alignment = Literal["aligned", "reworded"]
# Refusals the judge never overrides: what embeddings blur and the words show.
# "qualifier" and "substitution" are soft: evidence the judge weighs.
SOFT_REASONS = frozenset({"qualifier", "substitution"})


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    """How sure the cache must be before a near-identical request's answer serves.

    ``floor``: the cosine similarity below which no candidate is weighed (the
    index search stops there; a cost bound more than a decision: the judge
    accepts almost nothing below it). ``judge``: the probability the judge
    (:mod:`gateway_app.cache.judge`) must give that the two prompts ask the same.
    """

    judge: float
    floor: float


def _profiles() -> dict[str, GuardPolicy]:
    document = json.loads(Path(__file__).with_name("judge.json").read_text())
    return {
        name: GuardPolicy(judge=profile["probability"], floor=document["floor"])
        for name, profile in document["profiles"].items()
    }


# The profiles a config names (`cache.semantic.guard`): the judge's thresholds,
# chosen by `python -m bench.semantic_eval --fit` on the development pairs only
# (gateway_app/cache/judge.json says how; measured numbers: README,
# bench/semantic-cache.md and bench/semantic-eval-*.json).
PROFILES: dict[str, GuardPolicy] = _profiles()


@dataclass(frozen=True, slots=True)
class Verdict:
    """The guard's decision on one candidate, with the reason (for metrics and logs)."""

    accepted: bool
    # accepted: the alignment; refused: what differed (a lexical reason),
    # "similarity" (below the floor) or "judge" (the judge's probability too low)
    reason: str
    alignment: Alignment | None = None
    probability: float | None = None  # the judge's, when it weighed the pair


@dataclass(frozen=True, slots=True)
class Screen:
    """The word-level comparison of two prompts, before the judge."""

    refusal: str | None  # a reason no judge overrides, else None
    soft: str | None  # "qualifier" / "substitution": evidence for the judge
    alignment: Alignment


def screen(query: Features, cached: Features) -> Screen:
    """What the words of the two prompts say: a refusal, or what the judge should weigh."""
    reason = same_request(query, cached)
    if reason is not None and reason not in SOFT_REASONS:
        return Screen(reason, None, "reworded")
    return Screen(None, reason, align(query.stems, cached.stems))


def same_request(a: Features, b: Features) -> str | None:
    """None when the words of ``a`` and ``b`` show no difference, else what differs.

    ``qualifier`` and ``substitution`` (:data:`SOFT_REASONS`) are evidence for the
    judge; every other reason is a refusal.
    """
    if a.numbers != b.numbers:
        return "numbers"
    for number, units in a.quantities.items():
        other = b.quantities.get(number)
        if other and not any(_equivalent(x, y) for x in units for y in other):
            return "numbers"  # "two weeks" / "two days"
    # A named thing the other side lacks, unless the other side has the same word
    # uncapitalised ("a String" / "a string"), opening a sentence ("Terraform plan
    # keeps ..." / "my Terraform plan"), or spelled out ("NDA" / "non-disclosure
    # agreement").
    if any(not _spelled_out(e, b) for e in a.entities - b.entities) or any(
        not _spelled_out(e, a) for e in b.entities - a.entities
    ):
        return "entities"
    if (a.negations % 2) != (b.negations % 2):
        return "negation"
    for group, words in a.antonyms.items():
        # Only a conflict counts: one side saying "turn on" where the other says
        # "enable" (a synonym outside the table) is not evidence of opposition.
        other = b.antonyms.get(group)
        if other is not None and other != words:
            return "antonym"
    if (
        a.content != b.content
        and _DIRECTION_MARKERS.intersection(a.content)
        and Counter(a.content) == Counter(b.content)
    ):
        return "reversed"  # same words, another order: "A faster than B" / "B ... A"
    for left, right in a.directions:
        if (right, left) in b.directions:
            return "reversed"
    order_a = [e for e in a.entity_order if e in b.entities]
    if len(order_a) > 1 and order_a != [e for e in b.entity_order if e in a.entities]:
        return "reversed"
    return _compare_content(a, b)


def _spelled_out(entity: str, other: Features) -> bool:
    """The other prompt has ``entity`` as a plain word, in words ("NullPointerException" /
    "null pointer exception") or spelled out (an acronym: "NDA")."""
    if entity in other.plain and entity not in _FRAMING:  # not "US" / "us", "IT" / "it"
        return True
    if _acronym_at(entity, other.stems) is not None:
        return True
    words = other.words
    return any(
        "".join(words[start : start + size]) == entity
        for size in (2, 3, 4)
        for start in range(len(words) - size + 1)
    )


def _acronym_at(word: str, stems: tuple[str, ...]) -> int | None:
    """Where consecutive ``stems`` start with the letters of ``word`` ("pr": pull request)."""
    if not (2 <= len(word) <= 5 and word.isalpha()):
        return None
    size = len(word)
    for start in range(len(stems) - size + 1):
        if "".join(s[0] for s in stems[start : start + size]) == word:
            return start
    return None


def _equivalent(x: str, y: str) -> bool:
    return x == y or bool(_STEM_GROUPS.get(x, set()) & _STEM_GROUPS.get(y, set()))


def _opposite_prefix(x: str, y: str) -> bool:
    # "unenforc" / "enforc", "unpaid" / "paid": one stem is the other with a prefix
    # (the stemmer may cut the two differently: "unmut" / "mute").
    for short, long in ((x, y), (y, x)):
        for prefix in _POLARITY_PREFIXES:
            rest = long[len(prefix) :]
            if (
                long.startswith(prefix)
                and len(rest) >= 3
                and short.startswith(rest)
                and len(short) - len(rest) <= 1
            ):
                return True
    # "overpaid" / "underpaid", "hypertension" / "hypotension", "upgrade" / "downgrade".
    for first, second in _OPPOSITE_PREFIXES:
        for one, other in ((x, y), (y, x)):
            rest = one[len(first) :]
            if one.startswith(first) and len(rest) >= 3 and other == second + rest:
                return True
    return False


def _unexplained(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[Counter[str], Counter[str]]:
    """Content words of each side that the other side neither has nor has an equivalent of."""
    only_a = Counter(a) - Counter(b)
    only_b = Counter(b) - Counter(a)
    for x in list(only_a):
        for y in list(only_b):
            if only_a[x] and only_b[y] and _equivalent(x, y):
                matched = min(only_a[x], only_b[y])
                only_a[x] -= matched
                only_b[y] -= matched
    # An acronym on one side and the words it abbreviates on the other.
    for long, own, other in ((b, only_a, only_b), (a, only_b, only_a)):
        for x in [x for x in own if own[x]]:
            spelled = [s for s in long if other[s]]
            start = _acronym_at(x, tuple(spelled))
            if start is not None:
                own[x] -= 1
                for s in spelled[start : start + len(x)]:
                    other[s] -= 1
    return +only_a, +only_b


def _compare_content(fa: Features, fb: Features) -> str | None:
    a, b = fa.stems, fb.stems
    if _swapped(a, b):
        return "reversed"
    only_a, only_b = _unexplained(a, b)
    for x in only_a:
        for y in only_b:
            if _opposite_prefix(x, y):
                return "negation"
    if _NEGATION_TOKEN in only_a or _NEGATION_TOKEN in only_b:
        return "negation"
    if not only_a and not only_b:
        return None if _same_roles(fa, fb) else "reversed"
    if not only_a or not only_b:
        # Content on one side only: the other request with a qualifier added.
        extra = only_a or only_b
        if any(w not in _LIGHT_STEMS for w in extra):
            return "qualifier"
        return None
    # Both sides have words of their own. A short span replaced at one place in
    # otherwise equal text is a changed request ("approve" -> "deny"), not a
    # rewording (which changes the text in several places).
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    changed = [
        ([w for w in a[i1:i2] if only_a[w]], [w for w in b[j1:j2] if only_b[w]])
        for op, i1, i2, j1, j2 in matcher.get_opcodes()
        if op != "equal"
    ]
    # A preposition that follows the new verb ("permit X to" -> "prohibit X from")
    # is part of the same change, not a second place.
    changed = [
        ([w for w in left if w not in _PARTICLES], [w for w in right if w not in _PARTICLES])
        for left, right in changed
    ]
    changed = [(left, right) for left, right in changed if left or right]
    if len(changed) == 1 and 0 < len(changed[0][0]) <= 2 and 0 < len(changed[0][1]) <= 2:
        return "substitution"
    return None


def _swapped(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """``b`` is ``a`` with two words exchanged wherever they occur ("left join *orders* to
    *customers* so every *order* is kept" / the reverse), beyond two neighbours trading
    places (a compound against its prepositional form, which :func:`_same_roles` judges)."""
    if len(a) != len(b):
        return False
    positions = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    pairs = {(a[i], b[i]) for i in positions}
    if len(pairs) != 2:
        return False
    (x, y), (u, v) = pairs
    if (x, y) != (v, u) or _equivalent(x, y):
        return False
    return not (len(positions) == 2 and positions[1] == positions[0] + 1)


def _same_roles(fa: Features, fb: Features) -> bool:
    """Same content words: the same order, or one phrase moved without crossing a role word."""
    a, b = _abbreviated(fa.stems, fb.stems), _abbreviated(fb.stems, fa.stems)
    # Map b onto a's vocabulary (equivalents count as the same word).
    mapped = tuple(y if y in a else next((x for x in a if _equivalent(x, y)), y) for y in b)
    if mapped == a:
        return True
    # One phrase moved = after the common prefix and suffix, one middle is a
    # rotation of the other (X+Y against Y+X). Words of X and Y all change sides
    # of one another, so neither may hold a role word ("from", "than", "not", ...).
    start = 0
    while start < min(len(a), len(mapped)) and a[start] == mapped[start]:
        start += 1
    end = 0
    while end < min(len(a), len(mapped)) - start and a[-1 - end] == mapped[-1 - end]:
        end += 1
    left, right = a[start : len(a) - end], mapped[start : len(mapped) - end]
    if len(left) == 2 and right == left[::-1] and (a, b) == (fa.stems, fb.stems):
        # Two words trading places: "from X to Y" / "from Y to X" -- unless one
        # side is the compound of the other ("a branch in Git" / "a Git branch").
        return _compound(fa.gaps[start + 1], fb.gaps[start + 1])
    if _ROLE_ANCHORS.intersection(left):
        return False
    return any(left[r:] + left[:r] == right for r in range(1, len(left)))


def _abbreviated(words: tuple[str, ...], other: tuple[str, ...]) -> tuple[str, ...]:
    """``words`` with each run the other side abbreviates replaced by the acronym."""
    for acronym in set(other) - set(words):
        start = _acronym_at(acronym, words)
        if start is not None:
            words = (*words[:start], acronym, *words[start + len(acronym) :])
    return words


def _compound(gap_a: tuple[str, ...], gap_b: tuple[str, ...]) -> bool:
    """One side joins the two words directly, the other by "of", "for", "in", ..."""
    for direct, linked in ((gap_a, gap_b), (gap_b, gap_a)):
        rest = [w for w in linked if w not in _DETERMINERS]
        if not direct and len(rest) == 1 and rest[0] in _COMPOUND_LINKS:
            return True
    return False


def align(a: tuple[str, ...], b: tuple[str, ...]) -> Alignment:
    """``aligned`` when the content words correspond one to one, else ``reworded``."""
    only_a, only_b = _unexplained(a, b)
    return "aligned" if not only_a and not only_b else "reworded"
