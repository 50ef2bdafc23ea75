"""String kernels: StringConcat, StringNormalizer, StringSplit, RegexFullMatch, TfIdfVectorizer.

String tensors are object arrays of Python ``str``. RegexFullMatch follows RE2 syntax by
translating the pattern to Python's ``re`` (see :func:`re2_to_python`) and refusing the
constructs RE2 lacks (backreferences, lookaround, atomic groups, possessive quantifiers)
or that ``re`` cannot express (``\\p`` Unicode classes, ``\\C``, the ``U`` flag).
"""

from __future__ import annotations

import functools
import re

import numpy as np

from ferry.runtime.registry import kernel

_EMPTY_STRINGS = np.array([], dtype=object)


def _strings(array: np.ndarray, op: str) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype != object and array.dtype.kind not in "US":
        raise TypeError(f"{op} expects a string tensor, got {array.dtype}")
    return array.astype(object)


def _object_array(values, shape) -> np.ndarray:
    """An object array of ``shape`` filled from a flat list (np.array would nest lists)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out.reshape(shape)


# ------------------------------------------------------------------------ StringConcat


@kernel("StringConcat", since=20)
def string_concat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Elementwise concatenation X + Y of string tensors with numpy broadcasting."""
    x, y = _strings(x, "StringConcat"), _strings(y, "StringConcat")
    shape = np.broadcast_shapes(x.shape, y.shape)
    xb, yb = np.broadcast_to(x, shape).ravel(), np.broadcast_to(y, shape).ravel()
    return _object_array([a + b for a, b in zip(xb, yb)], shape)


# -------------------------------------------------------------------- StringNormalizer


_CASE_ACTIONS = {"NONE": lambda s: s, "LOWER": str.lower, "UPPER": str.upper}


@kernel("StringNormalizer", since=10)
def string_normalizer(x, *, case_change_action, is_case_sensitive, locale, stopwords):
    """Drop stopwords from a [C] or [1, C] string tensor, then lower/upper-case (Unicode rules; locale unused)."""
    x = _strings(x, "StringNormalizer")
    if not (x.ndim == 1 or (x.ndim == 2 and x.shape[0] == 1)):
        raise ValueError(f"StringNormalizer expects a [C] or [1, C] tensor, got shape {x.shape}")
    if case_change_action not in _CASE_ACTIONS:
        raise ValueError(
            f"StringNormalizer case_change_action must be one of {sorted(_CASE_ACTIONS)}, "
            f"got {case_change_action!r}"
        )
    words = list(x.ravel())
    if stopwords:
        if is_case_sensitive:
            stop = set(stopwords)
            words = [w for w in words if w not in stop]
        else:
            stop = {s.casefold() for s in stopwords}
            words = [w for w in words if w.casefold() not in stop]
    words = [_CASE_ACTIONS[case_change_action](w) for w in words] or [""]
    shape = (len(words),) if x.ndim == 1 else (1, len(words))
    return _object_array(words, shape)


# ------------------------------------------------------------------------- StringSplit


@kernel("StringSplit", since=20)
def string_split(x, *, delimiter, maxsplit):
    """Split each string on ``delimiter`` (whitespace runs when empty/unset), padding with ''."""
    x = _strings(x, "StringSplit")
    separator = delimiter or None
    limit = -1 if maxsplit is None else int(maxsplit)
    if limit < -1:
        raise ValueError(f"StringSplit maxsplit must be non-negative, got {maxsplit}")
    parts = [s.split(separator, limit) for s in x.ravel()]
    counts = np.array([len(p) for p in parts], dtype=np.int64).reshape(x.shape)
    width = int(counts.max()) if counts.size else 0
    padded = [piece for p in parts for piece in p + [""] * (width - len(p))]
    return _object_array(padded, (*x.shape, width)), counts


# ---------------------------------------------------------------------- RegexFullMatch


_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
# RE2's Perl classes are ASCII-only; Python's are Unicode-aware, so spell them out.
_PERL_CLASSES = {"d": "0-9", "s": "\\t\\n\\f\\r ", "w": "0-9A-Za-z_"}
_REFUSED_GROUPS = {
    "(?=": "lookahead",
    "(?!": "negative lookahead",
    "(?<=": "lookbehind",
    "(?<!": "negative lookbehind",
    "(?>": "atomic group",
    "(?(": "conditional group",
    "(?P=": "named backreference",
    "(?#": "comment group",
}


def _refuse(pattern: str, what: str) -> ValueError:
    return ValueError(f"RegexFullMatch pattern {pattern!r} uses {what}, which RE2 syntax does not support")


def _translate_escape(pattern: str, i: int, in_class: bool) -> tuple[str, int]:
    """Translate the escape at ``pattern[i] == '\\\\'``; returns (python text, next index)."""
    if i + 1 >= len(pattern):
        raise ValueError(f"RegexFullMatch pattern {pattern!r} ends with a lone backslash")
    c = pattern[i + 1]
    if c.isdigit() and c != "0":
        raise _refuse(pattern, f"the backreference \\{c}")
    if c in "pP":
        raise ValueError(
            f"RegexFullMatch pattern {pattern!r}: Unicode classes \\{c} are not supported by "
            "ferry's RE2 emulation (Python's re lacks them)"
        )
    if c == "C":
        raise ValueError(f"RegexFullMatch pattern {pattern!r}: \\C (any byte) is not supported")
    if c == "Z":
        raise _refuse(pattern, "\\Z (RE2 spells end of text \\z)")
    if c == "z":
        return ("" if in_class else "\\Z"), i + 2
    if c == "Q":
        end = pattern.find("\\E", i + 2)
        literal = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
        return re.escape(literal), len(pattern) if end < 0 else end + 2
    if c == "x" and pattern.startswith("{", i + 2):
        end = pattern.index("}", i + 3)
        return f"\\U{int(pattern[i + 3 : end], 16):08x}", end + 1
    if c.lower() in _PERL_CLASSES:
        body = _PERL_CLASSES[c.lower()]
        if in_class:
            if c.isupper():
                return f"\\{c}", i + 2  # negated class inside a set: Python's (Unicode) one
            return body, i + 2
        return (f"[^{body}]" if c.isupper() else f"[{body}]"), i + 2
    if c in "bB" and not in_class:
        return f"(?a:\\{c})", i + 2
    return pattern[i : i + 2], i + 2


def _translate_class(pattern: str, i: int) -> tuple[str, int]:
    """Translate the bracket expression starting at ``pattern[i] == '['``."""
    out = ["["]
    i += 1
    if pattern.startswith("^", i):
        out.append("^")
        i += 1
    if pattern.startswith("]", i):
        out.append("\\]")
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        if pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            name = pattern[i + 2 : end] if end > 0 else ""
            if name.startswith("^"):
                raise ValueError(f"RegexFullMatch pattern {pattern!r}: negated POSIX classes are not supported")
            if name not in _POSIX_CLASSES:
                raise ValueError(f"RegexFullMatch pattern {pattern!r}: unknown POSIX class [:{name}:]")
            out.append(_POSIX_CLASSES[name])
            i = end + 2
        elif pattern[i] == "\\":
            text, i = _translate_escape(pattern, i, in_class=True)
            out.append(text)
        elif pattern[i] == "[":
            out.append("\\[")
            i += 1
        else:
            out.append(pattern[i])
            i += 1
    if i >= len(pattern):
        raise ValueError(f"RegexFullMatch pattern {pattern!r} has an unterminated [...] class")
    return "".join(out) + "]", i + 1


def _translate_group(pattern: str, i: int) -> tuple[str, int]:
    """Translate a group opener at ``pattern[i] == '('``."""
    for opener, what in _REFUSED_GROUPS.items():
        if pattern.startswith(opener, i):
            raise _refuse(pattern, f"a {what} {opener}...)")
    if pattern.startswith("(?<", i):  # RE2 also accepts (?<name>...) for named groups
        return "(?P<", i + 3
    if pattern.startswith("(?", i) and not pattern.startswith("(?P<", i):
        flags = re.match(r"\(\?([a-zA-Z-]*)[:)]", pattern[i:])
        if flags and "U" in flags.group(1):
            raise ValueError(f"RegexFullMatch pattern {pattern!r}: the ungreedy flag U is not supported")
    return "(", i + 1


@functools.lru_cache(maxsize=256)
def re2_to_python(pattern: str) -> re.Pattern:
    """Compile an RE2 ``pattern`` as an equivalent Python regex, or raise ValueError."""
    out: list[str] = []
    multiline = re.search(r"\(\?[a-zA-Z]*m", pattern) is not None
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            text, i = _translate_escape(pattern, i, in_class=False)
        elif c == "[":
            text, i = _translate_class(pattern, i)
        elif c == "(":
            text, i = _translate_group(pattern, i)
        elif c in "*+?}" and pattern.startswith("+", i + 1):
            raise _refuse(pattern, f"the possessive quantifier {c}+")
        elif c == "$" and not multiline:
            text, i = "\\Z", i + 1  # RE2's $ is end of text, never before a final newline
        else:
            text, i = c, i + 1
        out.append(text)
    try:
        return re.compile("".join(out))
    except re.error as error:
        raise ValueError(f"RegexFullMatch: invalid pattern {pattern!r}: {error}") from None


@kernel("RegexFullMatch", since=20)
def regex_full_match(x, *, pattern):
    """True where the whole string matches the RE2 ``pattern``."""
    x = _strings(x, "RegexFullMatch")
    if pattern is None:
        raise ValueError("RegexFullMatch needs the 'pattern' attribute")
    regex = re2_to_python(pattern)
    flat = [regex.fullmatch(s) is not None for s in x.ravel()]
    return np.array(flat, dtype=bool).reshape(x.shape)


# --------------------------------------------------------------------- TfIdfVectorizer


def _ngram_pool(pool: list, ngram_counts: list[int], ngram_indexes: list[int]) -> dict:
    """Map each pooled n-gram (a tuple) to its output column."""
    starts = [*ngram_counts, len(pool)]
    lookup: dict[tuple, int] = {}
    slot = 0
    for n, (start, stop) in enumerate(zip(starts, starts[1:]), start=1):
        if (stop - start) % n:
            raise ValueError(
                f"TfIdfVectorizer pool segment of {n}-grams has {stop - start} items, not a multiple of {n}"
            )
        for k in range(start, stop, n):
            if slot >= len(ngram_indexes):
                raise ValueError("TfIdfVectorizer ngram_indexes is shorter than the number of pooled n-grams")
            lookup[tuple(pool[k : k + n])] = ngram_indexes[slot]
            slot += 1
    return lookup


def _count_ngrams(row: list, lookup: dict, counts: np.ndarray, lengths: range, max_skip: int) -> None:
    for n in lengths:
        for skip in range(max_skip + 1 if n > 1 else 1):
            step = skip + 1
            for start in range(len(row) - (n - 1) * step):
                column = lookup.get(tuple(row[start : start + (n - 1) * step + 1 : step]))
                if column is not None:
                    counts[column] += 1


@kernel("TfIdfVectorizer", since=9)
def tfidf_vectorizer(
    x,
    *,
    max_gram_length,
    max_skip_count,
    min_gram_length,
    mode,
    ngram_counts,
    ngram_indexes,
    pool_int64s,
    pool_strings,
    weights,
):
    """Count (skip-)n-grams of each row found in the pool; TF counts, IDF 0/1 * weight, TFIDF count * weight."""
    if (pool_int64s is None) == (pool_strings is None):
        raise ValueError("TfIdfVectorizer needs exactly one of pool_int64s and pool_strings")
    if mode not in ("TF", "IDF", "TFIDF"):
        raise ValueError(f"TfIdfVectorizer mode must be TF, IDF or TFIDF, got {mode!r}")
    x = np.asarray(x)
    if x.ndim not in (1, 2):
        raise ValueError(f"TfIdfVectorizer expects a [C] or [N, C] tensor, got shape {x.shape}")
    if pool_strings is not None:
        x = _strings(x, "TfIdfVectorizer")
        pool: list = list(pool_strings)
    else:
        if x.dtype.kind not in "iu":
            raise TypeError(f"TfIdfVectorizer with pool_int64s expects an integer tensor, got {x.dtype}")
        pool = [int(v) for v in pool_int64s]
    lookup = _ngram_pool(pool, list(ngram_counts), list(ngram_indexes))
    width = max(ngram_indexes) + 1 if ngram_indexes else 0
    rows = x if x.ndim == 2 else x.reshape(1, -1)
    out = np.zeros((rows.shape[0], width), dtype=np.float32)
    lengths = range(max(min_gram_length, 1), max_gram_length + 1)
    for r, row in enumerate(rows):
        values = row.tolist()
        _count_ngrams(values, lookup, out[r], lengths, max_skip_count)
    if mode != "TF":
        scale = np.ones(width, dtype=np.float32)
        if weights:
            scale[np.asarray(ngram_indexes)] = np.asarray(weights, dtype=np.float32)
        out = (np.minimum(out, 1) if mode == "IDF" else out) * scale
    return out.reshape(width) if x.ndim == 1 else out
