"""The second check after a vector match: do the two prompts ask the same thing?

Embeddings place "enable 2FA" next to "disable 2FA", "10 USD to EUR" next to
"10 EUR to USD" and "Paris" next to "Lyon" (DESIGN.md measured 0.97-0.99 for
such pairs with all-MiniLM-L6-v2, above many true paraphrases). This check is
lexical and cheap (microseconds) and refuses a match when the two texts differ
in what those embeddings blur:

- numbers (digits and number words) must be the same multiset;
- named things (capitalised words past the first, acronyms, identifiers with
  digits or underscores, quoted strings) must be the same set;
- negation must agree (an odd/even count of "not", "no", "never", "n't", ...);
- where both texts use a word of one antonym group (enable/disable,
  increase/decrease, ...), they must use the same words of it;
- direction must agree: "A to B" against "B to A" (also from/into/than/vs),
  the same words in another order, and the order of the named things.

Tuned on tests/gateway/cache/semantic_pairs.yaml; the test prints precision
and recall with the real model.
"""

from __future__ import annotations

import re
from collections import Counter

_WORD = re.compile(
    r"[A-Za-z][A-Za-z0-9_'\-]*|\d+[A-Za-z_][A-Za-z0-9_]*|\d+(?:[.,]\d+)*%?|\"[^\"]+\"|'[^']+'|`[^`]+`"
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*%?")
_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "hundred": "100",
    "thousand": "1000", "million": "1000000", "billion": "1000000000", "half": "0.5",
    "first": "1st", "second": "2nd", "third": "3rd", "single": "1", "double": "2x",
    "twice": "2x", "triple": "3x", "dozen": "12",
}  # fmt: skip
_NEGATIONS = {
    "not", "no", "never", "none", "nothing", "nobody", "neither", "nor", "without",
    "cannot", "can't", "don't", "doesn't", "didn't", "isn't", "aren't", "wasn't",
    "weren't", "won't", "wouldn't", "shouldn't", "couldn't", "mustn't", "haven't",
    "hasn't", "hadn't", "avoid", "stop", "unless", "except", "lack",
}  # fmt: skip
# Each group is one axis; texts must use the same members of it.
_ANTONYMS = [
    ("enable", "disable"), ("activate", "deactivate"), ("on", "off"), ("turn on", "turn off"),
    ("increase", "decrease", "reduce", "lower", "raise"), ("add", "remove", "delete"),
    ("allow", "deny", "block", "forbid", "permit"), ("encrypt", "decrypt"),
    ("upload", "download"), ("buy", "sell"), ("before", "after"), ("min", "max"),
    ("minimum", "maximum"), ("import", "export"), ("open", "close"), ("start", "stop", "end"),
    ("include", "exclude"), ("lock", "unlock"), ("true", "false"), ("input", "output"),
    ("encode", "decode"), ("compress", "decompress"), ("install", "uninstall"),
    ("subscribe", "unsubscribe"), ("follow", "unfollow"), ("connect", "disconnect"),
    ("push", "pull"), ("send", "receive"), ("read", "write"), ("left", "right"),
    ("up", "down"), ("north", "south"), ("east", "west"), ("hot", "cold"),
    ("fast", "faster", "slow", "slower"), ("best", "worst"), ("better", "worse"),
    ("more", "less", "fewer"), ("most", "least"), ("high", "low", "higher", "lower"),
    ("large", "small", "larger", "smaller", "big", "bigger", "largest", "smallest"),
    ("advantages", "disadvantages", "pros", "cons"), ("benefits", "risks", "drawbacks"),
    ("ascending", "descending"), ("first", "last"), ("oldest", "newest"),
    ("old", "new"), ("legal", "illegal"), ("safe", "unsafe", "dangerous"),
    ("valid", "invalid"), ("public", "private"), ("inner", "outer"), ("join", "leave"),
    ("win", "lose"), ("accept", "reject"), ("agree", "disagree"), ("like", "dislike"),
    ("sync", "async", "synchronous", "asynchronous"), ("client", "server"),
    ("plus", "minus"), ("multiply", "divide"), ("sum", "difference", "product"),
    ("yesterday", "today", "tomorrow"), ("morning", "evening", "night"),
    ("male", "female"), ("men", "women"), ("boy", "girl"), ("husband", "wife"),
    ("vegan", "vegetarian"), ("senior", "junior"), ("import", "export"),
]  # fmt: skip
_DIRECTION_MARKERS = {"to", "into", "from", "than", "vs", "versus", "over", "onto"}
_STOPWORDS = {
    "a", "an", "the", "my", "your", "our", "their", "its", "this", "that", "these", "those",
    "is", "are", "was", "were", "be", "do", "does", "did", "how", "what", "which", "who",
    "why", "when", "where", "i", "you", "we", "me", "can", "could", "should", "would",
    "please", "of", "in", "for", "with", "and", "or", "it", "some", "any", "way", "ways",
}  # fmt: skip
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\n]\s*)([A-Z][a-z]+)")
_ANTONYM_INDEX: dict[str, list[tuple[int, str]]] = {}
for _group, _words in enumerate(_ANTONYMS):
    for _w in _words:
        _ANTONYM_INDEX.setdefault(_w.split()[0], []).append((_group, _w))


class Features:
    """The lexical facts of one prompt the guard compares."""

    __slots__ = (
        "antonyms",
        "content",
        "directions",
        "entities",
        "entity_order",
        "negations",
        "numbers",
    )

    def __init__(self, text: str) -> None:
        tokens = _WORD.findall(text)
        lowered = [t.lower() for t in tokens]
        starts = {m.start(1) for m in _SENTENCE_START.finditer(text)}
        numbers: Counter[str] = Counter()
        entities: list[str] = []
        negations = 0
        antonyms: dict[int, set[str]] = {}
        position = 0
        for token, low in zip(tokens, lowered, strict=True):
            position = text.find(token, position)
            if token[0] in "\"'`" and len(token) > 2:
                entities.append(low.strip("\"'`"))
            elif _NUMBER.fullmatch(token):
                numbers[token.replace(",", "")] += 1
            elif low in _NUMBER_WORDS:
                numbers[_NUMBER_WORDS[low]] += 1
            elif (
                (token[0].isupper() and position not in starts and low not in _STOPWORDS)
                or (len(token) > 1 and token.isupper())
                or any(c.isdigit() for c in token)
                or "_" in token
            ):
                entities.append(low)
            if low in _NEGATIONS or low.endswith("n't"):
                negations += 1
            for group, word in _ANTONYM_INDEX.get(_stem(low), ()):
                antonyms.setdefault(group, set()).add(word)
            position += len(token)
        self.numbers = numbers
        self.entities = frozenset(entities)
        self.entity_order = tuple(dict.fromkeys(entities))
        self.negations = negations
        self.antonyms = antonyms
        content = [w for w in lowered if w not in _STOPWORDS]
        self.content = tuple(content)
        directions = set()
        for i, word in enumerate(content):
            if word in _DIRECTION_MARKERS and 0 < i < len(content) - 1:
                directions.add((content[i - 1], content[i + 1]))
        self.directions = frozenset(directions)


def _stem(word: str) -> str:
    # Enough morphology for the antonym table: enables/enabled/enabling -> enable.
    for suffix, replacement in (("ing", "e"), ("ed", "e"), ("es", "e"), ("s", "")):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            candidate = word[: -len(suffix)] + replacement
            if candidate in _ANTONYM_INDEX:
                return candidate
            if word[: -len(suffix)] in _ANTONYM_INDEX:
                return word[: -len(suffix)]
    return word


def same_request(a: Features, b: Features) -> str | None:
    """None when ``a`` and ``b`` may share an answer, else the reason they may not."""
    if a.numbers != b.numbers:
        return "numbers"
    if a.entities != b.entities:
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
        return "direction"  # same words, another order: "A faster than B" / "B ... A"
    for left, right in a.directions:
        if (right, left) in b.directions:
            return "direction"
    if len(a.entity_order) > 1 and a.entity_order != b.entity_order:
        return "direction"
    return None
