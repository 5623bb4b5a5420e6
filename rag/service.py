"""The one service behind the CLI, the API and the UI: a thin facade over retrieval (rag.retrieval) and the answer
pipeline (rag.answer.pipeline), plus read-only browsing (rag.browse). Components are built lazily from settings, or
injected (tests), and shared by every caller."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from graph.store import GraphStore
from rag.answer.pipeline import AnswerPipeline
from rag.answer.schema import Answer, Turn
from rag.browse import Browsing
from rag.components import Components
from rag.core.errors import InvalidInput
from rag.core.settings import Settings, get_settings
from rag.core.text import clean_text
from rag.retrieval.embedding import Embedder
from rag.retrieval.retriever import Retrieval, Retriever
from rag.stores.base import VectorStore

if TYPE_CHECKING:
    from rag.generation.base import Generator

MAX_TURNS = 10


class DrugService(Browsing):
    def __init__(self, settings: Settings | None = None, *, vstore: VectorStore | None = None,
                 gstore: GraphStore | None = None, embedder: Embedder | None = None,
                 generator: Generator | None = None) -> None:
        self.settings = settings or get_settings()
        self.c = Components(self.settings, vstore=vstore, gstore=gstore, embedder=embedder, generator=generator)

    # the components, for callers that need one directly (the UI, evaluation, benchmarks)
    @property
    def vstore(self) -> VectorStore:
        return self.c.vstore

    @property
    def gstore(self) -> GraphStore:
        return self.c.gstore

    @property
    def embedder(self) -> Embedder:
        return self.c.embedder

    @property
    def generator(self) -> Generator | None:
        return self.c.generator

    @property
    def retriever(self) -> Retriever:
        return self.c.retriever

    @property
    def pipeline(self) -> AnswerPipeline:
        return self.c.pipeline

    def warm_up(self) -> None:
        """Open the stores, build the linker and load the embedding model and the router, so the first question is
        fast."""
        r = self.retriever
        r.embedder.embed_queries(["warm-up"])
        r.linker.link("warm up the lexicon and the misspelling index: metfromin")
        for c in (r.classifier, r.requests):
            if c is not None:
                c.warm_up()

    def close(self) -> None:
        self.c.close()

    # -- asking ----------------------------------------------------------------------------------------------
    def retrieve(self, question: str, history: Sequence[Turn | dict[str, Any]] = ()) -> Retrieval:
        """Validate the question and the last turns, then retrieve: the first step of ask and ask_stream."""
        q = clean_text(question, self.settings.max_question_chars)
        return self.retriever.retrieve(q, _turns(history))

    def ask(self, question: str, history: Sequence[Turn | dict[str, Any]] = ()) -> Answer:
        t0 = time.perf_counter()
        ans = self.pipeline.answer(self.retrieve(question, history), _turns(history))
        ans.metadata.latency_ms = round((time.perf_counter() - t0) * 1000, 1)  # retrieval and answer, end to end
        return ans

    def ask_stream(self, question: str, history: Sequence[Turn | dict[str, Any]] = ()) -> Iterator[dict[str, Any]]:
        """Server-sent events (rag.answer.pipeline): checked facts as they pass, the prose, then the final JSON.
        Input and store errors are raised before the first event."""
        ret = self.retrieve(question, history)
        return self.pipeline.stream(ret, _turns(history))

    def interactions(self, drugs: Sequence[str]) -> Answer:
        """Every pair among two to ten drugs named on their own (the interaction checker)."""
        names = [clean_text(d, 200, "drug name") for d in drugs]
        if not 2 <= len(names) <= 10:
            raise InvalidInput("give between two and ten drugs to check")
        return AnswerPipeline().answer(self.retriever.retrieve_interactions(names))


def _turns(history: Sequence[Turn | dict[str, Any]]) -> list[Turn]:
    return [h if isinstance(h, Turn) else Turn.model_validate(h) for h in history][-MAX_TURNS:]
