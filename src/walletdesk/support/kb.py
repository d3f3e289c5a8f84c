"""Knowledge-base search, pure: tokenise zh-CN and English text, rank articles with BM25.

Chinese runs are cut into words with jieba's search mode (long words also yield their parts,
so 找回密码 matches 密码); Latin runs are lower-cased words, with no stemming: an article lists
the other spellings a reader may type (recognise / recognize, charge / charges) in its keywords.
Titles and keywords weigh more than the body (a simple BM25F: weighted term counts).
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import jieba

K1 = 1.5
B = 0.75
TITLE_WEIGHT = 3
KEYWORD_WEIGHT = 2
SNIPPET_LENGTH = 120
MAX_QUERY_LENGTH = 500

_RUNS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[a-z0-9]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SENTENCE_END = re.compile(r"(?<=[。!?;\n])|(?<=[.!?;])\s+")
_STOP_TEXT = """
    a an and are as at be but by can do does for from how i if in into is it its me my no not
    of on or so than that the their then there these this to was what when where which who why
    will with you your dont im ive
    的 了 是 我 你 您 在 和 与 吗 呢 吧 啊 呀 就 都 也 把 被 请 要 会 能 有 着 过 个 一个 怎么 什么
    如何 为什么 怎样 这 那 这个 那个 我的 应该 可以 一下
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())


@dataclass(frozen=True, slots=True)
class Document:
    slug: str
    language: str
    category: str
    title: str
    body: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Hit:
    slug: str
    category: str
    title: str
    score: float
    snippet: str


@dataclass(frozen=True)
class _Corpus:
    documents: tuple[Document, ...]
    counts: tuple[Counter[str], ...]
    lengths: tuple[float, ...]
    doc_freq: Counter[str]
    average_length: float


@dataclass(frozen=True)
class Index:
    """One BM25 corpus per language; build it with `build_index`."""

    corpora: dict[str, _Corpus] = field(default_factory=dict)

    def documents(self, language: str) -> tuple[Document, ...]:
        corpus = self.corpora.get(language)
        return corpus.documents if corpus else ()


@lru_cache(maxsize=1)
def _segmenter() -> jieba.Tokenizer:
    jieba.setLogLevel(logging.WARNING)
    return jieba.Tokenizer()


def normalise(text: str) -> str:
    """Full-width forms to ASCII, case folded, apostrophes dropped (don't -> dont)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return folded.replace("'", "").replace("\u2019", "")


def tokenize(text: str) -> list[str]:
    """Search terms of `text`, in order: Chinese words and English words, no stop words."""
    tokens: list[str] = []
    for run in _RUNS.findall(normalise(text)):
        words = _segmenter().lcut_for_search(run) if _CJK.match(run) else [run]
        tokens.extend(w for w in words if w.strip() and w not in STOP_WORDS)
    return tokens


def build_index(documents: Iterable[Document]) -> Index:
    by_language: dict[str, list[Document]] = {}
    for document in documents:
        by_language.setdefault(document.language, []).append(document)
    return Index({language: _corpus(docs) for language, docs in by_language.items()})


def _corpus(documents: Sequence[Document]) -> _Corpus:
    counts = tuple(_weighted_counts(d) for d in documents)
    lengths = tuple(float(sum(c.values())) for c in counts)
    doc_freq: Counter[str] = Counter()
    for count in counts:
        doc_freq.update(count.keys())
    average = sum(lengths) / len(lengths) if lengths else 0.0
    return _Corpus(tuple(documents), counts, lengths, doc_freq, average)


def _weighted_counts(document: Document) -> Counter[str]:
    counts: Counter[str] = Counter(tokenize(document.body))
    for term in tokenize(document.title):
        counts[term] += TITLE_WEIGHT
    for term in tokenize(" ".join(document.keywords)):
        counts[term] += KEYWORD_WEIGHT
    return counts


def search(
    index: Index, query: str, language: str, limit: int = 5, *, category: str | None = None
) -> list[Hit]:
    """Articles in `language` ranked by BM25 for `query`, best first; [] when nothing matches."""
    corpus = index.corpora.get(language)
    terms = list(dict.fromkeys(tokenize(query[:MAX_QUERY_LENGTH])))
    if corpus is None or not terms or limit < 1:
        return []
    scored = [
        (_score(corpus, position, terms), position)
        for position, document in enumerate(corpus.documents)
        if category is None or document.category == category
    ]
    ranked = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))[:limit]
    return [_hit(corpus.documents[position], score, terms) for score, position in ranked]


def _score(corpus: _Corpus, position: int, terms: Sequence[str]) -> float:
    counts, length = corpus.counts[position], corpus.lengths[position]
    total = len(corpus.documents)
    norm = K1 * (1 - B + B * length / corpus.average_length) if corpus.average_length else K1
    score = 0.0
    for term in terms:
        frequency = counts.get(term, 0)
        if frequency:
            df = corpus.doc_freq[term]
            idf = math.log(1 + (total - df + 0.5) / (df + 0.5))
            score += idf * frequency * (K1 + 1) / (frequency + norm)
    return score


def _hit(document: Document, score: float, terms: Sequence[str]) -> Hit:
    return Hit(
        slug=document.slug,
        category=document.category,
        title=document.title,
        score=round(score, 4),
        snippet=snippet(document.body, terms),
    )


def snippet(body: str, terms: Sequence[str], length: int = SNIPPET_LENGTH) -> str:
    """The body's sentence that holds most of `terms` (the first one if none), cut to `length`."""
    sentences = [s.strip() for s in _SENTENCE_END.split(_plain(body)) if s.strip()]
    if not sentences:
        return ""
    wanted = set(terms)
    best = max(sentences, key=lambda s: len(wanted.intersection(tokenize(s))))
    return best if len(best) <= length else best[: length - 1].rstrip() + "…"


def _plain(body: str) -> str:
    """Simple Markdown to plain text: no list markers, emphasis or heading marks."""
    lines = (re.sub(r"^\s*(?:[-*#>]+|\d+\.)\s*", "", line) for line in body.splitlines())
    return "\n".join(line.replace("**", "").replace("`", "") for line in lines)
