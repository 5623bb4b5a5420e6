"""An optional entailment check of generated facts: a sentence-transformers CrossEncoder NLI model the user supplies
(DRUGRAG_ENTAILMENT_MODEL = a local directory or a model id), off by default.

A fact passes when the model gives "entailment" at least `threshold` probability with the cited text as premise. The
entailment label is found in the model's config (`id2label`, a name containing "entail"); a one-output model is read
as an entailment score through a sigmoid. The deterministic check (rag.answer.factcheck) runs whether or not this is
configured, and never depends on it. No NLI weights ship in any package reachable here; tests use a tiny randomly
initialised CrossEncoder for the code path.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

import numpy as np

from rag.core.errors import ModelUnavailable


class CrossEncoderEntailment:
    def __init__(self, model: str, threshold: float = 0.5, device: str = "cpu") -> None:
        self.model_name = model
        self.threshold = threshold
        self.device = device
        self._model: Any = None
        self._entail_index: int | None = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    try:
                        from sentence_transformers import CrossEncoder

                        m = CrossEncoder(self.model_name, device=self.device)
                    except Exception as e:
                        raise ModelUnavailable(f"cannot load entailment model {self.model_name!r}: {e}") from e
                    labels = {int(k): str(v).lower() for k, v in (m.model.config.id2label or {}).items()}
                    n = int(m.model.config.num_labels)
                    self._entail_index = next((i for i, v in labels.items() if "entail" in v), None) if n > 1 else None
                    if n > 1 and self._entail_index is None:
                        raise ModelUnavailable(f"entailment model {self.model_name!r} has no 'entailment' label "
                                               f"(labels: {sorted(labels.values())})")
                    self._model = m
        return self._model

    def probability(self, premise: str, hypothesis: str) -> float:
        return _cached(self, premise, hypothesis)

    def _probability(self, premise: str, hypothesis: str) -> float:
        m = self._load()
        logits = np.asarray(m.predict([(premise, hypothesis)], apply_softmax=False, convert_to_numpy=True))[0]
        if self._entail_index is None:
            return float(1.0 / (1.0 + np.exp(-float(np.ravel(logits)[0]))))
        e = np.exp(logits - logits.max())
        return float(e[self._entail_index] / e.sum())

    def entails(self, premise: str, hypothesis: str) -> bool:
        return self.probability(premise, hypothesis) >= self.threshold


@lru_cache(maxsize=4096)
def _cached(model: CrossEncoderEntailment, premise: str, hypothesis: str) -> float:
    return model._probability(premise, hypothesis)
