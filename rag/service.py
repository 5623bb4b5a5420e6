"""The one service behind the CLI, the API and the UI: ask, interactions, drug pages, entity search, graph browse."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from graph.store import GraphStore
from rag.answer import extractive
from rag.answer.schema import Answer, Turn
from rag.answer.verify import verify
from rag.core.errors import InvalidInput, NotFound, StoreUnavailable
from rag.core.settings import Settings, get_settings
from rag.core.text import detect_language
from rag.core.types import Evidence
from rag.retrieval.embedding import Embedder
from rag.retrieval.linking import EntityLinker, LinkResult, load_synonyms, load_zh_en
from rag.retrieval.retriever import Retrieval, Retriever, group_by_mention
from rag.retrieval.routing import Route
from rag.stores.base import SearchFilter, VectorStore

if TYPE_CHECKING:
    from rag.generation.base import Generator

log = logging.getLogger(__name__)
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_question(q: Any, max_chars: int) -> str:
    if not isinstance(q, str):
        raise InvalidInput("question must be a string")
    q = _CTRL.sub(" ", q).strip()
    if not q:
        raise InvalidInput("question is empty: ask about a drug, e.g. 'What is warfarin used for?'")
    if len(q) > max_chars:
        raise InvalidInput(f"question is too long ({len(q)} characters; the limit is {max_chars})")
    return q


class DrugService:
    """Components are created lazily from settings (or injected, for tests) and shared by every caller."""

    def __init__(self, settings: Settings | None = None, *, vstore: VectorStore | None = None,
                 gstore: GraphStore | None = None, embedder: Embedder | None = None,
                 generator: Generator | None = None) -> None:
        self.settings = settings or get_settings()
        self._v = vstore
        self._g = gstore
        self._e = embedder
        self._gen = generator
        self._gen_loaded = generator is not None
        self._retriever: Retriever | None = None
        self._lock = threading.RLock()

    # -- components ------------------------------------------------------------------------------------------
    def _require_kb(self) -> None:
        """Serving never creates stores: an embedded KB that was never ingested is an error, not an empty answer."""
        s = self.settings
        missing = [
            p
            for p, used in ((s.edge_path, s.vector_backend == "edge"), (s.kuzu_path, s.graph_backend == "kuzu"))
            if used and not p.exists()
        ]
        if missing:
            raise StoreUnavailable(
                f"no knowledge base at {missing[0]}: run `drugrag ingest` first (DRUGRAG_HOME={s.home})"
            )

    @property
    def vstore(self) -> VectorStore:
        if self._v is None:
            with self._lock:
                if self._v is None:
                    from rag.components import make_vector_store

                    self._require_kb()
                    self._v = make_vector_store(self.settings, read_only=True)  # serving only reads
        return self._v

    @property
    def gstore(self) -> GraphStore:
        if self._g is None:
            with self._lock:
                if self._g is None:
                    from rag.components import make_graph_store

                    self._require_kb()
                    self._g = make_graph_store(self.settings, read_only=True)  # serving only reads
        return self._g

    @property
    def embedder(self) -> Embedder:
        if self._e is None:
            with self._lock:
                if self._e is None:
                    from rag.components import make_embedder

                    self._e = make_embedder(self.settings)
        return self._e

    @property
    def generator(self) -> Generator | None:
        if not self._gen_loaded:
            with self._lock:
                if not self._gen_loaded:
                    if self.settings.generator != "extractive":
                        from rag.components import make_generator

                        self._gen = make_generator(self.settings)
                    self._gen_loaded = True
        return self._gen

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            with self._lock:
                if self._retriever is None:
                    t = time.perf_counter()
                    g = self.gstore
                    linker = EntityLinker(
                        g.names("Drug"), g.names("Disease"), g.drug_label_index(), load_zh_en(), load_synonyms()
                    )
                    self._retriever = Retriever(
                        self.vstore, g, self.embedder, linker, self.settings.top_k, self.settings.prefetch
                    )
                    log.info("retriever ready in %.2f s", time.perf_counter() - t)
        return self._retriever

    def warm_up(self) -> None:
        """Open stores, build the linker and load the embedding model, so the first question is fast."""
        self.retriever.embedder.embed_queries(["warm-up"])

    def close(self) -> None:
        for x in (self._v, self._g):
            if x is not None:
                x.close()
        self._v = self._g = None
        self._retriever = None

    # -- asking ----------------------------------------------------------------------------------------------
    def _prepare(self, question: str, history: Sequence[Turn | dict]) -> tuple[Retrieval, list[Turn]]:
        """Validate the question and the last ten turns, then retrieve: the first step of ask and ask_stream."""
        q = clean_question(question, self.settings.max_question_chars)
        turns = [h if isinstance(h, Turn) else Turn.model_validate(h) for h in history][-10:]
        return self.retriever.retrieve(q, turns), turns

    def retrieve(self, question: str, history: Sequence[Turn] = ()) -> Retrieval:
        return self._prepare(question, history)[0]

    def ask(self, question: str, history: Sequence[Turn] = ()) -> Answer:
        t0 = time.perf_counter()
        ret, turns = self._prepare(question, history)
        answer = self._build(ret, turns)
        answer = verify(answer, ret.evidence)
        answer.metadata.latency_ms = round((time.perf_counter() - t0) * 1000, 1)
        return answer

    def _build(self, ret: Retrieval, history: Sequence[Turn]) -> Answer:
        base = extractive.build(ret, self.retriever.suggest, self.retriever.linker.prefix_candidates)
        gen = self.generator
        if gen is None or base.status in ("refused", "needs_clarification") or not ret.evidence.sources:
            return base
        from rag.answer.grounding import ground

        try:
            result = gen.generate(ret.evidence.question, ret.evidence, history)
            ans, stats = ground(
                result.raw_json if result.raw_json is not None else result.raw_text,
                ret.evidence,
                generator_name=gen.name,
                model=gen.model,
                prompt_format=result.prompt_format,
            )
        except Exception as e:  # noqa: BLE001 - a failed generation falls back to the extractive answer, never an error page
            log.warning("generation failed, falling back to extractive: %s", e)
            ans, stats = None, {"fallback": f"generation error: {e}"}
        if ans is None:
            base.metadata.fallback = str(stats.get("fallback", "invalid generation"))
            base.metadata.generator = f"extractive (fallback from {gen.name})"
            base.metadata.model = gen.model
            return base
        ans.metadata.linked = base.metadata.linked
        ans.metadata.routed_sections = base.metadata.routed_sections
        ans.metadata.retrieved_labels = base.metadata.retrieved_labels
        return ans

    def ask_stream(self, question: str, history: Sequence[Turn] = ()) -> Iterator[dict[str, Any]]:
        """Events for server-sent streaming: {"event": "token", "data": str}… then {"event": "answer", "data": json}."""
        t0 = time.perf_counter()
        ret, history = self._prepare(question, history)
        q = ret.evidence.question
        gen = self.generator
        answer: Answer | None = None
        if gen is not None and ret.evidence.sources and ret.evidence.intent != "prescription":
            from rag.answer.grounding import ground
            from rag.generation.streaming import AnswerTextStream

            pieces: list[str] = []
            prose = AnswerTextStream()  # the model streams JSON; users see only the "answer" prose as it grows
            try:
                for piece in gen.stream(q, ret.evidence, history):
                    pieces.append(piece)
                    if text := prose.feed(piece):
                        yield {"event": "token", "data": text}
                answer, stats = ground(
                    "".join(pieces),
                    ret.evidence,
                    generator_name=gen.name,
                    model=gen.model,
                    prompt_format=getattr(gen, "prompt_format", self.settings.generator_prompt_format),
                )
            except Exception as e:  # noqa: BLE001
                answer, stats = None, {"fallback": f"generation error: {e}"}
            if answer is None:
                answer = extractive.build(ret, self.retriever.suggest, self.retriever.linker.prefix_candidates)
                answer.metadata.fallback = str(stats.get("fallback"))
        if answer is None:
            answer = extractive.build(ret, self.retriever.suggest, self.retriever.linker.prefix_candidates)
            for word in re.findall(r"\S+\s*", answer.answer):
                yield {"event": "token", "data": word}
        answer = verify(answer, ret.evidence)
        answer.metadata.latency_ms = round((time.perf_counter() - t0) * 1000, 1)
        yield {"event": "answer", "data": answer.model_dump_json()}

    def interactions(self, drugs: Sequence[str]) -> Answer:
        names = [clean_question(d, 200) for d in drugs]
        if len(names) < 2:
            raise InvalidInput("give at least two drugs to check")
        if len(names) > 10:
            raise InvalidInput("give at most ten drugs at once")
        r = self.retriever
        links, unknown = [], []
        for n in names:
            found = r.linker.link_name(n)
            if not found:
                unknown.append(n)
            for lk in found:
                lk.matched = n
            links += found
        if unknown:
            raise NotFound(f"unknown drug(s) not in the knowledge base: {', '.join(unknown)}")
        question = " + ".join(names)
        ev = Evidence(
            question=question,
            language=detect_language(question),
            intent="interaction",
            sections=["interactions"],
            linked=[lk.entity() for lk in links],
        )
        ret = Retrieval(ev, LinkResult(links, []), Route("interaction", ["interactions"]))
        groups = group_by_mention(links)
        sources = r.interaction_sources(groups, ret)
        for i, s in enumerate(sources, 1):
            s.sid = f"S{i}"
        ev.sources = sources
        ev.retrieved_labels = list(dict.fromkeys(s.doc_id for s in sources if s.kind == "label"))
        return verify(extractive.build(ret), ev)

    # -- browsing ---------------------------------------------------------------------------------------------
    def search(self, q: str, limit: int = 20, types: Sequence[str] | None = None) -> list[dict[str, Any]]:
        q = clean_question(q, 200)
        idx = self.retriever.linker.drug_labels
        return [
            {**n, "has_label": bool(idx.get(n["id"])) if n["type"] == "Drug" else False}
            for n in self.gstore.find_entities(q, limit=limit, types=types)
        ]

    def drug(self, drug_id: str) -> dict[str, Any]:
        g = self.gstore
        node = g.get_node("Drug", drug_id)
        if node is None:
            links = self.retriever.linker.link_name(drug_id)
            node = g.get_node("Drug", links[0].id) if links else None
        if node is None:
            raise NotFound(f"unknown drug: {drug_id}")
        labels = []
        for lid in g.labels_of_drug(node["id"]):
            labels.append(self.label(lid))
        return {
            "drug": node,
            "labels": labels,
            "interactions": g.interactions_of(node["id"], limit=50),
            "graph": g.edges_of("Drug", node["id"], ["RECOMMAND_DRUG", "COMMON_DRUG"], limit=50),
        }

    def label(self, label_id: str) -> dict[str, Any]:
        chunks = list(self.vstore.scroll(SearchFilter(label_ids=[label_id])))
        if not chunks:
            raise NotFound(f"unknown label: {label_id}")
        secs: dict[int, list[dict[str, Any]]] = {}
        for c in chunks:
            secs.setdefault(int(c.get("section_idx", 0)), []).append(c)
        first = chunks[0]
        sections = []
        for si in sorted(secs):
            cs = sorted(secs[si], key=lambda c: c["chunk_index"])
            sections.append(
                {
                    "index": si,
                    "key": cs[0]["section"],
                    "name": cs[0].get("section_name"),
                    "text": "".join(c["text"] for c in cs),
                }
            )
        return {
            "label_id": label_id,
            "title": first.get("title"),
            "version": first.get("version"),
            "effective_date": first.get("effective_date"),
            "language": first.get("language"),
            "source": first.get("source"),
            "source_file": first.get("source_file"),
            "names": first.get("names", []),
            "sections": sections,
        }

    def neighbourhood(
        self,
        node_id: str,
        node_type: str | None = None,
        depth: int = 1,
        types: Sequence[str] | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        if not 1 <= depth <= 3:
            raise InvalidInput("depth must be 1, 2 or 3")
        if not 1 <= limit <= 500:
            raise InvalidInput("limit must be between 1 and 500")
        g = self.gstore
        if node_type is None:
            found = [n for n in g.find_entities(node_id, limit=20) if n["id"] == node_id]
            if not found:
                raise NotFound(f"unknown graph entity: {node_id}")
            node_type = found[0]["type"]
        elif g.get_node(node_type, node_id) is None:
            raise NotFound(f"unknown graph entity: {node_type} {node_id}")
        nodes, edges, truncated = g.neighbourhood(
            node_type, node_id, depth=depth, edge_types=types or None, limit=limit
        )
        return {
            "center": {"id": node_id, "type": node_type},
            "nodes": nodes,
            "edges": edges,
            "truncated": truncated,
            "limit": limit,
        }

    def kb_stats(self) -> dict[str, Any]:
        report_path = self.settings.home / "ingest_report.json"
        report = json.loads(report_path.read_text()) if report_path.exists() else None
        return {
            "graph": self.gstore.counts(),
            "chunks": self.vstore.count(),
            "labels": len(self.vstore.label_hashes()),
            "ingest_report": report,
        }

    def health(self) -> dict[str, Any]:
        """Readiness: the embedder embeds, the vector store answers one exact query over every vector (a damaged
        segment fails here, not only in ask) and the graph answers a count. Errors are reported, never raised."""
        out: dict[str, Any] = {}
        vec: list[float] | None = None
        try:
            vec = [float(x) for x in self.embedder.embed_queries(["readiness probe"])[0]]
            out["embedder"] = {"ok": True}
        except Exception as e:  # noqa: BLE001 - health reports every failure
            out["embedder"] = {"ok": False, "error": str(e)}
        try:
            v = self.vstore
            if vec is not None:
                v.probe(vec)
            out["vector_store"] = {"ok": True, "chunks": v.count(), "probed": vec is not None}
        except Exception as e:  # noqa: BLE001
            out["vector_store"] = {"ok": False, "error": str(e)}
        try:
            c = self.gstore.counts()
            out["graph_store"] = {"ok": True, "nodes": sum(c["nodes"].values())}
        except Exception as e:  # noqa: BLE001
            out["graph_store"] = {"ok": False, "error": str(e)}
        out["ok"] = all(v["ok"] for v in out.values() if isinstance(v, dict))
        out["generator"] = self.settings.generator
        return out
