"""Written lines -> the words a speaker says: what a subtitle or a script needs before it is a training target.

Games and scripts write what the actor says with digits, stage directions, emphasis and sounds that are not
words. :func:`spoken` turns a line into the text the audio holds (or None when it cannot say), and the general
normaliser (:func:`asr.text.normalize`) then lowers case and strips punctuation as for every corpus.

- numbers to words with num2words (a well-kept library): "42" -> "forty-two", "1999" -> "nineteen ninety-nine"
  when it reads as a year, "3rd" -> "third", "£5" -> "five pounds", "50%" -> "fifty percent";
- stage directions in brackets or asterisks ("(laughs)", "[sigh]", "*cough*") are not spoken text: removed;
- "...", "--", quotes and emphasis capitals ("I *DID* it") become plain words (case is the normaliser's job);
- sounds with no spelling ("HIC!", "Aaaargh", "Hmmm", "Zzz"), a sung line ("@@ I think I'm in love @@") and a
  censored oath ("&#($!!"): the written form does not say what was heard, so such a line is left out (None),
  with the reason, rather than taught with a made-up spelling.
"""

from __future__ import annotations

import re

from num2words import num2words

# Interjections with no agreed spelling; a line with one is left out. Elongated words (a letter three times in a
# row, "Aaargh", "Nooo") are caught by the pattern below, not listed.
NON_WORDS = frozenset("""hic hmm hm mmm mm uhh umm erm ahh argh aargh urgh ugh hahaha tsk pah pfft zzz grr brr ahem
achoo atishoo gulp sniff sob sigh cough gasp groan yawn""".split())
_ELONGATED = re.compile(r"([a-z])\1\1")
_DIRECTION = re.compile(r"\([^)]*\)|\[[^\]]*\]|\{[^}]*\}|<[^>]*>")
_ASTERISKED = re.compile(r"\*([^*]+)\*")
_SYMBOLS = re.compile(r"[&#$%@!*^]{3,}")  # a run with one of &#$%@*^ in it: "&#($!!", not "!!!"
_GLYPHS = re.compile(r"\^_|[™®©]")  # font glyphs (the Queen's "^_" is its trademark sign): not spoken
_CURRENCY = {"£": "pound", "$": "dollar", "€": "euro"}
_NUMBER = re.compile(r"([£$€]?)(\d[\d,]*(?:\.\d+)?)(st|nd|rd|th|s|%)?", re.IGNORECASE)


def _plural(word: str, amount: str) -> str:
    return word if amount in ("1", "1.0") else word + "s"


def _number(match: re.Match) -> str:
    """One written number as words (``match`` of :data:`_NUMBER`)."""
    currency, digits, suffix = match.group(1), match.group(2).replace(",", ""), (match.group(3) or "").lower()
    if suffix in ("st", "nd", "rd", "th"):
        return " " + num2words(int(float(digits)), to="ordinal") + " "
    if suffix == "s" and len(digits) == 4:  # "1990s"
        words = num2words(int(digits), to="year")
        return " " + (words[:-1] + "ies" if words.endswith("y") else words + "s") + " "
    if currency:
        return f" {num2words(float(digits) if '.' in digits else int(digits))} {_plural(_CURRENCY[currency], digits)} "
    if suffix == "%":
        return f" {num2words(float(digits) if '.' in digits else int(digits))} percent "
    if len(digits) == 4 and "." not in digits and 1100 <= int(digits) <= 2099:
        return " " + num2words(int(digits), to="year") + " "
    return " " + num2words(float(digits) if "." in digits else int(digits)) + " " + suffix


def non_words(text: str) -> list[str]:
    """The words of ``text`` that are sounds with no spelling (see :data:`NON_WORDS`), lower-cased."""
    words = re.findall(r"[a-z][a-z'-]*", text.lower())
    return [w for w in words if w.strip("'-") in NON_WORDS or _ELONGATED.search(w)]


def spoken(line: str, strict: bool = True) -> tuple[str | None, str]:
    """``(text, "")`` with the words a speaker says for ``line``, or ``(None, reason)`` when the line cannot be
    trusted as a transcript (nothing left after stage directions, or a sound with no spelling). ``strict=False``
    keeps lines with sounds, songs and oaths as written: a test set scores every line, a training set may not."""
    if strict and ("@@" in line or "\u266a" in line):
        return None, "sung"
    text = _DIRECTION.sub(" ", _GLYPHS.sub(" ", line))
    if strict and any(set(run) - {"!"} for run in _SYMBOLS.findall(text)):
        return None, "censored word"
    # *word* is emphasis when it is inside a sentence; a whole line in asterisks is a direction ("*cough*").
    if _ASTERISKED.fullmatch(text.strip()):
        return None, "stage direction only"
    text = _ASTERISKED.sub(r" \1 ", text)
    text = _NUMBER.sub(_number, text.replace("...", " ").replace("--", " "))
    if not re.search(r"[A-Za-z]", text):
        return None, "stage direction only" if line.strip() else "empty"
    if strict and non_words(text):
        return None, "sound with no spelling"
    return " ".join(text.split()), ""
