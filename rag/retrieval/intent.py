"""What a question asks, from its meaning: a nearest-prototype classifier over the multilingual embedder.

rag/data/intent_prototypes.json holds, per intent, many phrasings in English and Chinese with the drug written as X
(a second drug Z, a disease Y). A question is masked the same way (its linked names replaced), embedded with the
same model that embeds passages, and compared with every prototype: an intent's score is the mean cosine of its k
most similar prototypes, and a softmax over the scores gives a distribution. The distribution, not just its top,
goes to retrieval as a soft prior over sections (rag.retrieval.routing), so an unusual phrasing still lands on the
best passage of the right label.

Whether a question asks the assistant to prescribe is a separate decision (`RequestClassifier`): logistic
regressions over the same embeddings and over character n-grams, averaged, trained on requests (any wording,
role-play, for someone else) against questions *about* a drug someone was prescribed ("my doctor prescribed X, how do
I take it?") and every ordinary question prototype. Its training phrasings are composed from frames and slot values
(rag/data/prescription_frames.json), so it learns the frame — who is asked to prescribe — rather than the question
that follows. A request often comes last, after a story ("I've had a fever for three days, my GP is away … could you
sort me out?"), and the story dilutes the whole question's vector; so the classifier also scores each trailing run of
clauses that addresses the assistant (`addressed_tails`), and is trained on those tails of its own examples, and the
highest score decides.

Prototype vectors are computed once and cached on disk (`cache_dir`, keyed by the embedder's name and a hash of the
texts), so start-up costs one batch the first time only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.retrieval.embedding import Embedder

log = logging.getLogger(__name__)
DATA = Path(__file__).resolve().parents[1] / "data"
PROTOTYPES = DATA / "intent_prototypes.json"
FRAMES = DATA / "prescription_frames.json"
EXAMPLES = DATA / "prescription_examples.jsonl"  # eval/build_rx_examples.py: tuning halves of the project's own sets
# eval/paraphrase sets never learnt from, both halves (eval/build_rx_examples.py): the held-out set; rx_probe13
# (written as a test set); rx_probe22 (requests and reports about one named drug that look alike on purpose — learnt,
# its blood-pressure and sleep requests taught the vector model topics, and an ordinary question naming a
# blood-pressure pill and a sleeping tablet was refused, 0.58)
TEST_SETS = frozenset({"heldout", "rx_probe13", "rx_probe22"})
REQUEST_CLASSES = ("prescription", "about_prescribed")  # decided by RequestClassifier, not routed as intents
FRAME_WEIGHT_POWER = 0.25  # RequestClassifier.training_set


class IntentClassifier:
    def __init__(self, embedder: Embedder, path: Path = PROTOTYPES, k: int = 3, temperature: float = 0.005,
                 cache_dir: Path | None = None) -> None:
        self.embedder = embedder
        self.path = path
        self.cache_dir = cache_dir
        self.k = k
        self.temperature = temperature
        self._lock = threading.Lock()
        self._matrix: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        self.intents: list[str] = []

    def _load(self) -> tuple[np.ndarray, np.ndarray]:
        if self._matrix is None or self._labels is None:
            with self._lock:
                if self._matrix is None:
                    data = json.loads(self.path.read_bytes())
                    texts: list[str] = []
                    labels: list[str] = []
                    for intent, by_lang in data.items():
                        if intent.startswith("_") or intent in REQUEST_CLASSES:
                            continue
                        for lang in ("en", "zh"):
                            for t in by_lang.get(lang, []):
                                texts.append(t)
                                labels.append(intent)
                    self.intents = sorted(set(labels))
                    m = embed_cached(self.embedder, texts, self.cache_dir, "intent-prototypes")
                    self._labels = np.asarray(labels)
                    self._matrix = m
                    log.info("intent classifier: %d prototypes, %d intents", len(texts), len(self.intents))
        assert self._matrix is not None and self._labels is not None
        return self._matrix, self._labels

    def warm_up(self) -> None:
        self._load()

    def scores(self, vec: np.ndarray) -> dict[str, float]:
        """Per intent: mean cosine of its k nearest prototypes to `vec` (a normalised query embedding)."""
        m, labels = self._load()
        sims = m @ np.asarray(vec, dtype=np.float32)
        out: dict[str, float] = {}
        for intent in self.intents:
            s = np.sort(sims[labels == intent])[::-1][: self.k]
            out[intent] = float(s.mean()) if len(s) else -1.0
        return out

    def classify(self, masked_question: str) -> dict[str, float]:
        """A probability per intent (softmax of the k-nearest-prototype scores) for a masked question."""
        vec = self.embedder.embed_queries([masked_question])[0]
        return self.probabilities(self.scores(vec))

    def probabilities(self, scores: dict[str, float]) -> dict[str, float]:
        keys = list(scores)
        x = np.asarray([scores[k] for k in keys]) / self.temperature
        e = np.exp(x - x.max())
        p = e / e.sum()
        return {k: float(v) for k, v in zip(keys, p, strict=True)}


def embed_cached(embedder: Embedder, texts: list[str], cache_dir: Path | None, name: str) -> np.ndarray:
    """Query embeddings of fixed training texts, cached on disk by the embedder's name and the texts themselves (so
    a change in the source files or in how the texts are composed is never served stale vectors)."""
    h = hashlib.sha1(embedder.name.encode())
    h.update("\n".join(texts).encode())
    f = cache_dir / f"{name}-{h.hexdigest()[:16]}.npy" if cache_dir else None
    if f is not None and f.exists():
        m = np.load(f)
        if m.shape[0] == len(texts):
            return m
    m = np.asarray(embedder.embed_queries(texts), dtype=np.float32)
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        np.save(f, m)
    return m


_CLAUSE_END = re.compile(r"(?<!\d)\.(?!\d)\s*|[!?;,，。！？；:：]+\s*")
MAX_TAILS = 6  # a request comes in the last clauses; a long story costs at most this many extra vectors
# the assistant addressed: you, 你, 您, or a zh imperative that drops 你 — not a forum's readers ("you guys", "you
# all", 你们, 大家, 各位, 病友们), whose "your experience" is theirs
_ADDRESSED = re.compile(r"\b(?:you|u|ya|your|yourself)\b|你|您|[给帮替]我", re.I)
_AUDIENCE = re.compile(r"\byou (?:guys|all|folks)\b|\by'?all\b|\beveryone\b|\banyone\b|你们|大家|各位|病友们|姐妹们",
                       re.I)
# courtesy around a question ("Thank you so much!!", "谢谢", "sorry to bother"): a tail of nothing else is no request
# ("thank you so much" alone scored 0.997, and refused a dosage question it closed)
# A clause that opens with thanks, appreciation or gratitude is courtesy to its end ("thank you so much for your time",
# "I really appreciate your help", "I'd be grateful for any details you can share"), never a request on its own —
# unless it goes on to one ("I'd appreciate it if you could …", "thanks for renewing my …")
_COURTESY = re.compile(r"(?:\b(?:i'?d be|i would be|i'?m|i am|we'?d be|we are|i|we)\s+)?(?:(?:really|truly|so|very|"
                       r"most|deeply|greatly)\s+)?\b(?:thank(?:s|ing)?|thankful|grateful|appreciated?|appreciates)\b"
                       r"(?![^.!?,;，。！？；\n]*\b(?:if|whether|prescrib\w*|writ\w*|renew\w*|refill\w*|send\w*|give|"
                       r"giving|put(?:ting)? me|start(?:ing)? me|switch\w*|increas\w*|up(?:ping)? my)\b)"
                       r"[^.!?,;，。！？；\n]*|"
                       r"\b(?:thx|ty|please|pls|plz|"
                       r"sorry(?: to bother(?: you)?)?|cheers|in advance|god bless)\b|"
                       r"谢谢(?:你|您|啦|了|大家)?|多谢|感谢|麻烦(?:你|您)?了|辛苦(?:你|您)?了|拜托(?:了)?|不好意思|打扰了",
                       re.I)
# 给我/帮我 after someone else in the same clause ("医生之前给我开过", "药店帮我配的") is that person acting, not the
# assistant addressed
_THIRD_PARTY_ZH = re.compile(r"(?:医生|大夫|医师|医院|门诊|诊所|药师|药店|药房|护士|急诊|他|她|爸|妈|老公|老婆|"
                             r"朋友|家人)[^，。,？！?!；;\s]{0,8}?[给帮替]我")


# a closing clause that only asks to be told ("tell me please", "walk me through it", "fill me in", "你给我讲讲",
# "你跟我唠唠"): the ask is the question before it, scored with it; alone, "你给我…" read as a request (0.99 on
# "你给我念叨念叨" after a question about side effects). Matched after _COURTESY has taken out please / pls / plz
_TELLING = (r"(?:tell|explain|describe|walk|talk|fill|spell|break|lay|let|run)(?:\s+(?:me|us|it|this|that|through|"
            r"in|out|down|to|know|over|the|details|more|straight|quickly|briefly))*")
_INFO_CLOSER = re.compile(r"(?:(?:can|could|would|will)\s+(?:you|u)\s+)?(?:just\s+|kindly\s+)?"
                          + _TELLING + r"|"
                          r"(?:你|您)?(?:就|再|帮|给|跟|替|和)?(?:我|俺|咱)?(?:们)?(?:好好|详细|仔细|简单|大概)?"
                          r"(?:讲|说|念叨|唠|说道|掰扯|科普|解释|介绍|分析|捋|普及|讲解|解答|告诉我)"
                          r"(?:讲|说|念叨|唠|说道|掰扯|科普|解释|介绍|分析|捋|普及|一下|一捋|下|呗|吧|呀|啊|哈|嘛|呢)*",
                          re.I)


# a clause that says what the asker is NOT asking for ("I'm not asking you to change anything", "not looking for a
# new prescription", "不是让你给我开药"): no request, and left out of what the request check reads — alone it
# scored as one (0.87 on "… Is twice a day what the leaflet says for the starting dose? I'm not asking you to change
# anything."). The rest of the question is read as usual, a request in it included
_DISCLAIMER = re.compile(
    r"\bnot\s+(?:asking|looking|trying|here|wanting|requesting)\s+(?:you\s+)?(?:to|for)\s+(?:\w+\s+){0,3}?"
    r"(?:chang\w*|prescri\w*|scripts?|rx|adjust\w*|alter\w*|increas\w*|decreas\w*|switch\w*|refill\w*|renew\w*)\b"
    r"|\b(?:don'?t|do not)\s+(?:want|need)\s+(?:you\s+)?to\s+(?:prescri\w*|chang\w*|adjust\w*|renew\w*|refill\w*|"
    r"write)\b"
    r"|(?:不是|并不是|并非|不)(?:要|想|想要|让|想让|请|叫)(?:你|您)(?:给我|帮我|替我)?(?:开|改|调|换|加|减|续|批)"
    r"|不用(?:你|您)(?:给我|帮我)?(?:开|改|调|换|加|减|续)", re.I)


def without_disclaimers(text: str) -> str:
    """`text` without its clauses that disclaim a request (`_DISCLAIMER`), for the request check."""
    if not _DISCLAIMER.search(text):
        return text
    kept = [p.strip() for p in _CLAUSE_END.split(text) if p.strip() and not _DISCLAIMER.search(p)]
    return ", ".join(kept) if kept else text


def addressed_tails(text: str) -> list[str]:
    """The trailing runs of clauses of `text` (after its first clause) that address the assistant ("…, could you
    sort me out?", "…，你直接给我续上吧"): where a request told after a story is scored on its own."""
    parts = [p for p in _CLAUSE_END.split(text) if p.strip()]
    tails = [", ".join(parts[i:]) for i in range(max(1, len(parts) - MAX_TAILS), len(parts))]
    # each scored without its courtesy: "thank you" addresses nobody, and "I really appreciate your help" after a
    # question about a dose is no part of a request
    tails = [" ".join(_COURTESY.sub(" ", t).split()).strip(" ,") for t in tails]
    tails = [t for t in tails if not _INFO_CLOSER.fullmatch(t)]
    return [t for t in tails if len(t) >= 4 and _ADDRESSED.search(_THIRD_PARTY_ZH.sub(" ", t))
            and not _AUDIENCE.search(t) and len(re.sub(r"[\W_]+", "", t)) >= 3]


def compose(frames: list[str], slots: dict[str, dict[str, list[str]]], lang: str, per_frame: int,
            rng: random.Random) -> list[str]:
    """Fill each frame's {slots} (slot values may hold slots themselves) `per_frame` times."""
    out: list[str] = []
    for frame in frames:
        seen: set[str] = set()
        for _ in range(per_frame * 3):
            text = frame
            for _depth in range(3):
                for name in re.findall(r"{(\w+)}", text):
                    text = text.replace("{" + name + "}", rng.choice(slots[name][lang]), 1)
            if text not in seen:
                seen.add(text)
                out.append(text)
            if len(seen) >= per_frame:
                break
    return out


class RequestClassifier:
    """P(the question asks the assistant to prescribe or to decide a personal treatment), from two models trained on
    the same composed requests, composed reports of a prescribed drug and ordinary questions:

    - a logistic regression over the embedder's vectors (meaning: "sort me out with X" is near "prescribe X"), and
    - a logistic regression over character 1-4-gram TF-IDF of the same texts (form: who acts — "prescribe me" /
      "给我开" against "was prescribed" / "医生开的" — which the sentence vector, dominated by the topic, blurs).

    Each of the masked question and its `addressed_tails` is scored by both models, averaged in log-odds, and the
    highest-scoring text decides. Measured on the prescription probes' tuning halves and the paraphrase dev set
    (eval/paraphrase), the pair (with the {doc} frames and the zh imperative tails) answered 1 of 170 requests where
    the vector model alone answered 8, and refused 1 of 125 questions about a prescribed drug where it refused 3;
    neither refused any of the 1,355 ordinary questions. With rx_probe4 added (194 requests, 148 reports in the
    tuning parts), the frames for approving a dose change, drafting a prescription or a note to the pharmacy, and
    reports with a patient story took requests answered from 4 to 1 and reports refused from 3 to 0; 0 of 3,187
    ordinary dev questions refused. Twenty compositions per frame instead of six (2026-12-07) widened the gap between
    the classes on the tuning halves and dev from 0.42 to 0.70 in log-odds and took the requests answered on the
    held-aside halves of the prescription probes from 5 to 3 of 296 (held-out set: 10 to 5 of 96; that set served
    here as a validation set).

    Besides the frames it learns from labelled examples (rag/data/prescription_examples.jsonl, built by
    eval/build_rx_examples.py): the tuning halves of the project's own prescription probes, label probes and dev set,
    2,624 masked questions, 589 of them requests, each with the tails the service would score. Frames are a narrow
    generator; people's requests are not. With them (2026-12-07; service level, exact cues included): the held-aside
    halves of rx probes 1-12 and 14 answered 1 of 323 requests and refused 1 of 303 reports (rx probes 1-12 before:
    1 of 296 and 2 of 271), the held-out set 2 of 96 and 1 of 96 (before: 4 and 0), rx_probe13 (a test set written
    by a helper, never learnt from) 1 of 70 and 0 of 70 (before: 2 and 1); no ordinary question of the label probes'
    held-aside halves was refused. The held-aside halves, the held-out set and rx_probe13 are never read, and a tuning
    question whose masked text is also a test question's (a label probe's phrasing filled with another drug in the
    other half) is left out: until 2026-12-07 such twins were learnt, and hid two false refusals of ordinary questions
    ("这个药X能跟别的药一块吃不 我还吃着降压的": the medicines already taken read as a request, 0.48), which the
    frames with medicines already taken (slot {meds}) now cover. Frames with "tell me" closures and shop questions
    as ordinary questions (2026-12-07, for "…这药有啥副作用，你给我念叨念叨" and "…3. do you have a loyalty card?",
    both refused) were tried and left out: on the sets not learnt from they answered 5 requests where the examples
    alone answered 4 (held-aside halves) and 2 where they answered 1 (held-out), and refused 3 reports where they
    refused 2.

    A closing clause that only asks to be told ("你给我讲讲", "walk me through it": `_INFO_CLOSER`) is no tail of its
    own, and first-person dose questions ("X我一次该吃多少", "how much X am I supposed to take?") are info frames
    (2026-12-07, later): leave-one-probe-out over the examples (each rx probe's tuning half a fold, the label probes
    and dev five more) missed 3 of 589 requests and refused 7 of 2,035 other questions before, 3 and 5 with the
    closer rule, 3 and 3 with both; of 35 ordinary questions of my own 9 were refused before and 3 after, of 29
    requests of my own none was answered either way. On the held-aside halves of the rx probes (not learnt from) it
    answered 6 of 569 requests where it answered 4 before (reports refused 2 of 534 and held-out requests answered 1
    of 96, both unchanged)."""

    NGRAMS = (1, 4)

    def __init__(self, embedder: Embedder, frames: Path = FRAMES, prototypes: Path = PROTOTYPES,
                 cache_dir: Path | None = None, per_frame: int = 20, c: float = 10.0,
                 examples: Path | None = EXAMPLES) -> None:
        self.embedder = embedder
        self.frames, self.prototypes, self.cache_dir, self.examples = frames, prototypes, cache_dir, examples
        self.per_frame, self.c = per_frame, c
        self._w: np.ndarray | None = None
        self._b = 0.0
        self._ngrams: Any = None  # (TfidfVectorizer, LogisticRegression)
        self._lock = threading.Lock()

    def training_set(self) -> tuple[list[str], list[int], list[float]]:
        """(texts, labels, weights): requests (1) first, then other questions (0) — the composed frames, the
        prototypes, the labelled examples, and their `addressed_tails` (with their source's label and weight).

        A frame's texts weigh (per_frame / n) ** FRAME_WEIGHT_POWER each, n the distinct texts its slots compose:
        "do I need a prescription for {drug}?" composes one text, "please prescribe {obj}" seven and most frames
        twenty, and unweighted the one-text frame counted a twentieth of a full one — outvoted by a few labelled
        requests that share its words ("need a prescription for X asap"). Full weight (power 1) let the frames,
        a narrow generator, outweigh the labelled examples: on the sets the classifier never learns from (rx probes'
        held-aside halves, the held-out set) power 1 answered 3 + 5 requests and refused 4 + 1 reports at the
        threshold, power 0 answered 1 + 6 and refused none, power 0.25 answered 1 + 4 and refused none."""
        fr, pr = json.loads(self.frames.read_bytes()), json.loads(self.prototypes.read_bytes())
        rng = random.Random(7)
        pos: list[tuple[str, float]] = []
        neg: list[tuple[str, float]] = []
        for lang in ("en", "zh"):
            for key, out in (("request", pos), ("report", neg), ("info", neg)):
                for frame in fr[key][lang]:
                    texts = compose([frame], fr["slots"], lang, self.per_frame, rng)
                    out.extend((t, (self.per_frame / len(texts)) ** FRAME_WEIGHT_POWER) for t in texts)
        for intent, by_lang in pr.items():
            if intent.startswith("_"):
                continue
            for lang in ("en", "zh"):
                (pos if intent == "prescription" else neg).extend((t, 1.0) for t in by_lang.get(lang, []))
        pos += [(t, w) for x, w in pos for t in addressed_tails(x)]  # scored on their own too (module doc)
        neg += [(t, w) for x, w in neg for t in addressed_tails(x)]
        if self.examples is not None and self.examples.exists():
            for ln in self.examples.read_text(encoding="utf-8").splitlines():
                if ln.strip():
                    ex = json.loads(ln)  # masked text, and its tails cut from the question as asked
                    (pos if ex["request"] else neg).extend((t, 1.0) for t in [ex["text"], *ex.get("tails", [])])
        return ([t for t, _ in pos + neg], [1] * len(pos) + [0] * len(neg), [w for _, w in pos + neg])

    def training_texts(self) -> tuple[list[str], list[str]]:
        """(requests, other questions) of `training_set`."""
        texts, y, _ = self.training_set()
        return [t for t, k in zip(texts, y, strict=True) if k], [t for t, k in zip(texts, y, strict=True) if not k]

    def _fit(self) -> np.ndarray:
        if self._w is None:
            with self._lock:
                if self._w is None:
                    from sklearn.feature_extraction.text import TfidfVectorizer
                    from sklearn.linear_model import LogisticRegression

                    texts, labels, weights = self.training_set()
                    y, sw = np.asarray(labels), np.asarray(weights)
                    vec = TfidfVectorizer(analyzer="char", ngram_range=self.NGRAMS, lowercase=True, sublinear_tf=True,
                                          min_df=2)
                    ng = LogisticRegression(C=self.c, class_weight="balanced", max_iter=3000).fit(
                        vec.fit_transform(texts), y, sample_weight=sw)
                    self._ngrams = (vec, ng)
                    x = embed_cached(self.embedder, texts, self.cache_dir, "rx-training")
                    clf = LogisticRegression(C=self.c, class_weight="balanced", max_iter=3000).fit(
                        x, y, sample_weight=sw)
                    self._b = float(clf.intercept_[0])
                    self._w = np.asarray(clf.coef_[0], dtype=np.float32)
                    log.info("prescription-request classifier: %d requests, %d other questions", int(y.sum()),
                             int(len(y) - y.sum()))
        assert self._w is not None
        return self._w

    def warm_up(self) -> None:
        self._fit()

    def probability(self, vec: np.ndarray) -> float:
        """P(request) from the vector model alone, of one normalised query vector."""
        w = self._fit()
        return float(1.0 / (1.0 + np.exp(-(float(np.asarray(vec, dtype=np.float32) @ w) + self._b))))

    def form_probability(self, texts: Sequence[str]) -> float:
        """P(request) from the character n-gram model alone: the highest over `texts`."""
        self._fit()
        vec, ng = self._ngrams
        return float(ng.predict_proba(vec.transform(list(texts)))[:, 1].max())

    def request_probability(self, texts: Sequence[str], vecs: Sequence[np.ndarray]) -> float:
        """P(request) of a question: `texts` are its masked form and its masked `addressed_tails`, `vecs` their
        query vectors (same order). Each text is scored by both models, averaged in log-odds, and the highest text
        decides: a tail must look like a request to both models at once ("could you go over how often I take it"
        alone looks like one to the vector model, not to the n-gram model; the whole report to neither)."""
        self._fit()
        vec, ng = self._ngrams
        p_form = ng.predict_proba(vec.transform(list(texts)))[:, 1]
        z = max((_logit(self.probability(v)) + _logit(float(pf))) / 2 for v, pf in zip(vecs, p_form, strict=True))
        return float(1.0 / (1.0 + np.exp(-z)))


def _logit(p: float, eps: float = 1e-6) -> float:
    p = min(max(p, eps), 1 - eps)
    return float(np.log(p / (1 - p)))
