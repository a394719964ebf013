"""Small text-analysis helpers: extractive summaries, keywords, related texts.

Plain Python on purpose (no Django, no third-party packages), so the
functions can be unit-tested and reused anywhere. Every result is
deterministic: ties are always broken by position or alphabetically.
"""
import math
import re
from collections import Counter

STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be
    because been before being below between both but by can could did do does
    doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more
    most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why
    will with would you your yours yourself yourselves
    """.split()
)

_WORD_RE = re.compile(r"\w+")
# Latin punctuation needs whitespace after it (so "3.14" stays whole);
# CJK full stops are not followed by spaces.
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*")


def tokenize(text):
    """Lower-cased words of ``text``; ``\\w`` is Unicode-aware, so "café" is one word."""
    return [word for word in _WORD_RE.findall(text.lower()) if not word.isdigit()]


def content_words(text):
    return [word for word in tokenize(text) if word not in STOPWORDS and len(word) > 1]


def split_sentences(text):
    return [s.strip() for s in _SENTENCE_END_RE.split(text.strip()) if s.strip()]


def summarize_sentences(text, max_sentences=3):
    """The ``max_sentences`` most representative sentences, in their original order.

    A sentence scores the mean normalised frequency of its content words, so
    long sentences are not favoured just for being long.
    """
    if max_sentences < 1:
        raise ValueError("max_sentences must be at least 1")
    sentences = split_sentences(text)
    if len(sentences) <= max_sentences:
        return sentences

    frequencies = Counter(content_words(text))
    top = max(frequencies.values(), default=1)

    def score(sentence):
        words = content_words(sentence)
        if not words:
            return 0.0
        return sum(frequencies[word] / top for word in words) / len(words)

    ranked = sorted(range(len(sentences)), key=lambda i: (-score(sentences[i]), i))
    return [sentences[i] for i in sorted(ranked[:max_sentences])]


def summarize(text, max_sentences=3):
    """Extractive summary of ``text``: its best sentences joined by spaces."""
    return " ".join(summarize_sentences(text, max_sentences))


def keywords(text, n=5):
    """The ``n`` most frequent content words; equal counts sort alphabetically."""
    counts = Counter(content_words(text))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [word for word, _ in ranked[:n]]


def _tfidf_vectors(documents):
    tokenized = [content_words(doc) for doc in documents]
    doc_freq = Counter()
    for words in tokenized:
        doc_freq.update(set(words))
    total = len(documents)
    # Smoothed idf (as scikit-learn does) keeps words found in every document
    # from vanishing entirely.
    idf = {word: math.log((1 + total) / (1 + df)) + 1 for word, df in doc_freq.items()}

    vectors = []
    for words in tokenized:
        counts = Counter(words)
        length = len(words) or 1
        vectors.append({word: (count / length) * idf[word] for word, count in counts.items()})
    return vectors


def _cosine(a, b):
    if len(a) > len(b):
        a, b = b, a
    dot = sum(weight * b.get(word, 0.0) for word, weight in a.items())
    if not dot:
        return 0.0
    norm_a = math.sqrt(sum(w * w for w in a.values()))
    norm_b = math.sqrt(sum(w * w for w in b.values()))
    # Rounding can push identical vectors a hair above 1.
    return min(1.0, dot / (norm_a * norm_b))


def related_articles(target, candidates, n=5):
    """Rank ``candidates`` by TF-IDF cosine similarity to ``target``.

    ``target`` is a text; ``candidates`` is an iterable of ``(key, text)``
    pairs. Returns up to ``n`` ``(key, score)`` pairs with a positive score,
    best first, equal scores in candidate order.
    """
    candidates = list(candidates)
    if not candidates or n < 1:
        return []
    vectors = _tfidf_vectors([target] + [text for _, text in candidates])
    target_vector, candidate_vectors = vectors[0], vectors[1:]
    scored = [
        (index, key, _cosine(target_vector, vector))
        for index, ((key, _), vector) in enumerate(zip(candidates, candidate_vectors))
    ]
    scored = [item for item in scored if item[2] > 0]
    scored.sort(key=lambda item: (-item[2], item[0]))
    return [(key, score) for _, key, score in scored[:n]]
