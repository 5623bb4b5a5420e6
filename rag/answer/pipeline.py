"""The one answer pipeline, for `ask` and `ask_stream` alike: policy → extractive answer → (generator → checked
facts) → the last gate (rag.answer.verify).

- The policy (rag.answer.policy) decides refusals, unknown drugs and clarifications first; nothing it decides reaches
  a model.
- With no generator, the extractive answer is the answer.
- With one, the model's JSON is checked fact by fact (rag.answer.grounding); a fact that passed is final. An output
  with no supported fact (or a failure of the model) falls back to the extractive answer, with the reason recorded.
- `stream` yields each fact as soon as it passed its check (never unchecked text), then the answer's prose, then the
  final JSON: the same answer `answer` gives for the same output.

Events (`stream`), as server-sent events at /v1/ask/stream:
  {"event": "fact", "data": {"fact": Fact, "citations": [Citation]}}   one per checked fact, in answer order
  {"event": "token", "data": str}                                        the final answer's prose, in pieces
  {"event": "answer", "data": Answer JSON}                               last, always
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from rag.answer import extractive
from rag.answer.gen_schema import parse_json
from rag.answer.grounding import DrugMentions, Entailment, Grounder
from rag.answer.policy import Suggest, decide
from rag.answer.schema import Answer, Fact
from rag.answer.verify import verify
from rag.core.types import Turn
from rag.retrieval.retriever import Retrieval

if TYPE_CHECKING:
    from rag.generation.base import Generator

log = logging.getLogger(__name__)
Event = dict[str, Any]


class AnswerPipeline:
    def __init__(self, generator: Generator | None = None, *, suggest: Suggest | None = None,
                 prefix_candidates: Suggest | None = None, drug_mentions: DrugMentions | None = None,
                 entailment: Entailment | None = None) -> None:
        self.generator = generator
        self.suggest = suggest
        self.prefix_candidates = prefix_candidates
        self.drug_mentions = drug_mentions
        self.entailment = entailment

    def _start(self, ret: Retrieval) -> tuple[Answer, bool]:
        """(the policy's or the extractive answer, whether a generator should be asked)."""
        decided = decide(ret, self.suggest, self.prefix_candidates)
        if decided is not None:
            return decided, False
        base = extractive.build(ret)
        use_model = self.generator is not None and bool(ret.evidence.sources) and base.status != "needs_clarification"
        return base, use_model

    def _fallback(self, base: Answer, reason: str) -> Answer:
        gen = self.generator
        assert gen is not None
        log.info("answering extractively: %s", reason)
        return base.model_copy(update={"metadata": base.metadata.model_copy(update={
            "fallback": reason, "generator": f"extractive (fallback from {gen.name})", "model": gen.model})})

    def _checked(self, g: Grounder, pieces: Iterator[str] | list[str], out: list[str]) -> Iterator[Fact]:
        """Feed the model's output through the fact check as it arrives; yield each fact that passed."""
        facts = FactStream()
        for piece in pieces:
            out.append(piece)
            for rf in facts.feed(piece):
                fact = g.add(rf)
                if fact is not None:
                    yield fact

    def _finish(self, g: Grounder, text: str, base: Answer) -> Answer:
        """The checked answer from the whole output (a broken tail keeps the facts that already passed)."""
        gen = self.generator
        assert gen is not None
        try:
            obj: Any = parse_json(text)
        except ValueError as e:
            obj = {"status": "answered"} if g.draft.facts else None
            g.stats["invalid_json"] = str(e)
        if g.draft.facts and isinstance(obj, dict) and obj.get("status") in ("insufficient_evidence",
                                                                             "needs_clarification"):
            g.stats["status_overridden"] = obj["status"]  # checked facts are an answer, whatever the model called it
            obj = {**obj, "status": "answered"}
        ans, stats = g.finish(obj, gen.name, gen.model, getattr(gen, "prompt_format", None))
        return ans if ans is not None else self._fallback(base, str(stats.get("fallback")))

    def answer(self, ret: Retrieval, history: Sequence[Turn] = ()) -> Answer:
        t0 = time.perf_counter()
        base, use_model = self._start(ret)
        out = base
        if use_model:
            gen = self.generator
            assert gen is not None
            g = Grounder(ret.evidence, self.drug_mentions, self.entailment)
            text: list[str] = []
            try:
                result = gen.generate(ret.evidence.question, ret.evidence, history)
                for _ in self._checked(g, [result.raw_text], text):
                    pass
                out = self._finish(g, "".join(text), base)
            except Exception as e:  # noqa: BLE001 - a failed generation falls back to the extractive answer
                out = self._fallback(base, f"generation error: {e}") if not g.draft.facts else \
                    self._finish(g, '{"status": "answered"}', base)
        return _done(note_corrections(verify(out, ret.evidence)), t0)

    def stream(self, ret: Retrieval, history: Sequence[Turn] = ()) -> Iterator[Event]:
        t0 = time.perf_counter()
        base, use_model = self._start(ret)
        out = base
        shown = False
        if use_model:
            gen = self.generator
            assert gen is not None
            g = Grounder(ret.evidence, self.drug_mentions, self.entailment)
            text: list[str] = []
            try:
                for fact in self._checked(g, gen.stream(ret.evidence.question, ret.evidence, history), text):
                    shown = True
                    yield _fact_event(fact, g)
                out = self._finish(g, "".join(text), base)
            except Exception as e:  # noqa: BLE001 - a failed generation falls back to the extractive answer
                out = self._fallback(base, f"generation error: {e}") if not g.draft.facts else \
                    self._finish(g, '{"status": "answered"}', base)
        final = _done(note_corrections(verify(out, ret.evidence)), t0)
        if not shown:
            for fact in final.facts:
                yield {"event": "fact", "data": {"fact": fact.model_dump(), "citations": [
                    c.model_dump() for c in final.citations if c.id in fact.citations]}}
        for word in re.findall(r"\S+\s*", final.answer):
            yield {"event": "token", "data": word}
        yield {"event": "answer", "data": final.model_dump_json()}


def _fact_event(fact: Fact, g: Grounder) -> Event:
    cites = [c.model_dump() for c in g.draft.cites.items if c.id in fact.citations]
    return {"event": "fact", "data": {"fact": fact.model_dump(), "citations": cites}}


def note_corrections(ans: Answer) -> Answer:
    """An answer about a drug whose name was linked through a misspelling says so first, in the question's language,
    so a near-miss of another name (or an invented one) is never answered as that drug silently."""
    fixed: dict[str, str] = {}  # misspelling → the first name it was linked to (one mention may link several ids)
    for lk in ans.metadata.linked:
        if lk.corrected and lk.type == "Drug":
            fixed.setdefault(lk.matched, lk.name)
    if ans.status != "answered" or not fixed:
        return ans
    if ans.language == "zh":
        names = "；".join(f"“{m}”按{n}" for m, n in fixed.items())
        note = f"（已将{names}理解，这是知识库中最接近的药名；如指其他药物，请核对名称。）"
    else:
        names = "; ".join(f'"{m}" as {n}' for m, n in fixed.items())
        note = f"(Read {names}: the closest names in the knowledge base. If you meant another drug, check the " \
               "spelling.) "
    return ans.model_copy(update={"answer": note + ans.answer})


def _done(ans: Answer, t0: float) -> Answer:
    ans.metadata.latency_ms = round((time.perf_counter() - t0) * 1000, 1)
    return ans


class FactStream:
    """Finds each complete object of the top-level "facts" array in a JSON document that arrives in pieces:
    feed(piece) → the facts completed by this piece (parsed)."""

    def __init__(self) -> None:
        self.buf = ""
        self.pos = 0  # next char to scan
        self.depth = 0
        self.in_str = False
        self.esc = False
        self.in_facts: int | None = None  # depth of the facts array, once found
        self.start: int | None = None  # where the current fact object began
        self.key = ""  # the last string read at object depth 1 (the current top-level key)
        self.str_start = 0

    def feed(self, piece: str) -> list[Any]:
        self.buf += piece
        out: list[Any] = []
        s = self.buf
        for i in range(self.pos, len(s)):
            c = s[i]
            if self.in_str:
                if self.esc:
                    self.esc = False
                elif c == "\\":
                    self.esc = True
                elif c == '"':
                    self.in_str = False
                    if self.depth == 1:
                        self.key = s[self.str_start:i]
                continue
            if c == '"':
                self.in_str, self.str_start = True, i + 1
            elif c in "{[":
                self.depth += 1
                if c == "[" and self.depth == 2 and self.key == "facts":
                    self.in_facts = 2
                elif c == "{" and self.in_facts is not None and self.depth == self.in_facts + 1:
                    self.start = i
            elif c in "}]":
                closes_fact = self.in_facts is not None and self.depth == self.in_facts + 1
                if c == "}" and closes_fact and self.start is not None:
                    try:
                        out.append(parse_json(s[self.start: i + 1]))
                    except ValueError:
                        pass
                    self.start = None
                if c == "]" and self.in_facts is not None and self.depth == self.in_facts:
                    self.in_facts = None
                self.depth -= 1
        self.pos = len(s)
        return out


def make_drug_mentions(link: Callable[[str], Any]) -> DrugMentions:
    """Drug names a text mentions, each with the spellings evidence may use (id, display name, the text's words)."""
    from kb_loaders.names import norm_name

    def mentions(text: str) -> list[tuple[str, set[str]]]:
        out: list[tuple[str, set[str]]] = []
        for lk in link(text).drugs:
            out.append((lk.matched, {lk.id.lower(), norm_name(lk.name), norm_name(lk.matched)}))
        return out

    return mentions
