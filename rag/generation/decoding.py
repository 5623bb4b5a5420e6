"""Per-row hooks of one batched `model.generate` call: the grammar mask (llguidance), the stopping criterion and
the streamer. They share a `_Batch` (per-row state) owned by rag.generation.engine.LocalEngine.

Constrained decoding: llguidance (the engine outlines 1.3.3 uses as its `backend="llguidance"`) computes a token mask
per step from the JSON schema. It is applied by our own logits processor rather than through outlines' transformers
wrapper, because that wrapper cannot stream (`generate_stream` raises NotImplementedError), takes one grammar per
batch, and its mask kernel is `torch.compile`d (tens of seconds on a CPU, per process). Outlines' default backend
(outlines_core) builds a full token index per schema: with this schema's length limits that took 132 s and more
than 12 GB, so it is not usable here. The processor also enforces a token budget: when a constrained row nears
max_new_tokens it is steered to close the JSON (`"`, `]`, `}`), so a truncated generation is still valid JSON.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.generation.engine import GenRequest, LocalEngine

log = logging.getLogger(__name__)

CLOSE_RESERVE_MAX = 48  # tokens kept at the end of a constrained generation to close the JSON


class _Batch:
    """Per-row state shared by the logits processor, the stopping criterion and the streamer of one generate()."""

    def __init__(self, engine: LocalEngine, reqs: list[GenRequest], matchers: list[Any], prompt_len: int):
        self.engine = engine
        self.reqs = reqs
        self.matchers = matchers
        self.prompt_len = prompt_len
        self.done = [False] * len(reqs)
        self.keep: list[int | None] = [None] * len(reqs)  # tokens to keep once a row is done
        self.reserve = [min(CLOSE_RESERVE_MAX, max(1, r.max_new_tokens // 2)) for r in reqs]
        self.puts = -1  # the first put() is the prompt
        self.prefix_off = [0] * len(reqs)  # incremental detokenisation windows
        self.read_off = [0] * len(reqs)
        # a tiny JSON lexer per row (over the text so far): are we inside a string?
        self._scan = [0] * len(reqs)
        self._in_str = [False] * len(reqs)
        self._esc = [False] * len(reqs)

    def in_string(self, i: int) -> bool:
        text = self.reqs[i].text
        in_str, esc = self._in_str[i], self._esc[i]
        for c in text[self._scan[i]:]:
            if esc:
                esc = False
            elif c == "\\" and in_str:
                esc = True
            elif c == '"':
                in_str = not in_str
        self._scan[i], self._in_str[i], self._esc[i] = len(text), in_str, esc
        return in_str

    def finish(self, i: int, reason: str, keep: int) -> None:
        self.done[i] = True
        self.keep[i] = keep
        r = self.reqs[i]
        if r.finish_reason is None:
            r.finish_reason = reason


@functools.cache
def _processor_cls() -> type:
    from transformers import LogitsProcessor

    class GrammarProcessor(LogitsProcessor):
        """Masks each constrained row's logits to its grammar; near the budget, steers it to close the JSON."""

        def __init__(self, batch: _Batch):
            self.b = batch

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            import llguidance.torch as llt
            import numpy as np
            import torch

            b, eng = self.b, self.b.engine
            step = input_ids.shape[1] - b.prompt_len
            rows = [i for i, m in enumerate(b.matchers) if m is not None and not b.done[i]]
            if not rows:
                return scores
            bitmask = eng._bitmask(len(b.reqs))
            for i in rows:
                llt.fill_next_token_bitmask(b.matchers[i], bitmask, i)
            vocab = scores.shape[1]
            # one bit per allowed token in little-endian int32 words: unpack the complement, one byte per token
            words = bitmask[rows].numpy()
            banned = np.unpackbits(np.invert(words).view(np.uint8), axis=1, bitorder="little")
            if banned.shape[1] < vocab:  # logits wider than the tokenizer's vocabulary: the extra ids are banned
                banned = np.pad(banned, ((0, 0), (0, vocab - banned.shape[1])), constant_values=1)
            ban = torch.from_numpy(banned[:, :vocab]).to(device=scores.device, dtype=torch.bool)
            if len(rows) == scores.shape[0]:
                scores.masked_fill_(ban, float("-inf"))
            else:
                idx = torch.tensor(rows, device=scores.device)
                scores[idx] = scores[idx].masked_fill(ban, float("-inf"))
            for i in rows:
                m = b.matchers[i]
                closing = b.reqs[i].max_new_tokens - step <= b.reserve[i]
                in_str = b.in_string(i) if closing else False
                ff = m.compute_ff_tokens() if not in_str else []
                if ff:  # text the grammar forces: take its canonical first token
                    scores[i, ff[0]] += 1e4
                elif closing:  # near the budget: close the open string, then the open arrays/objects
                    closers = eng._close_str if in_str else eng._close_struct
                    if closers is not None:
                        scores[i, closers] += 1e4  # banned (-inf) entries stay -inf
            return scores

    return GrammarProcessor


@functools.cache
def _stopper_cls() -> type:
    from transformers import StoppingCriteria

    class RowStopper(StoppingCriteria):
        """Per-row stop: EOS, grammar complete, error, budget or cancellation. Feeds each new token to its matcher."""

        def __init__(self, batch: _Batch):
            self.b = batch

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            import torch

            b = self.b
            step = input_ids.shape[1] - b.prompt_len  # tokens generated so far, this one included
            out = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            last = input_ids[:, -1].tolist()
            for i, r in enumerate(b.reqs):
                if b.done[i]:
                    out[i] = True
                    continue
                tok = int(last[i])
                m = b.matchers[i]
                if tok in b.engine._stop_ids:
                    b.finish(i, "stop", step - 1)
                elif m is not None and not m.consume_token(tok):
                    r.error = f"constrained decoding error: {m.get_error()}"
                    b.finish(i, "error", step)
                elif m is not None and m.is_stopped():
                    b.finish(i, "stop", step)  # the JSON is complete: no need to generate EOS
                elif r.cancelled:
                    b.finish(i, "cancelled", step)
                elif step >= r.max_new_tokens:
                    b.finish(i, "length", step)
                out[i] = b.done[i]
            return out

    return RowStopper


@functools.cache
def _streamer_cls() -> type:
    from transformers.generation.streamers import BaseStreamer

    class RowStreamer(BaseStreamer):
        """Collects each row's tokens and calls its on_text with newly decoded text."""

        def __init__(self, batch: _Batch):
            self.b = batch

        def put(self, value: Any) -> None:
            b = self.b
            b.puts += 1
            if b.puts == 0:  # the prompt
                return
            s = b.puts - 1
            toks = value.reshape(-1).tolist()
            now = time.perf_counter()
            for i, r in enumerate(b.reqs):
                keep = b.keep[i]
                if (b.done[i] and keep is not None and s >= keep) or i >= len(toks):
                    continue
                r.token_ids.append(int(toks[i]))
                if r.t_first is None:
                    r.t_first = now
                self._emit(i, final=False)

        def _emit(self, i: int, final: bool) -> None:
            """Incremental detokenisation (as vLLM does it): decode a short window before and after the new
            tokens and emit the difference, so each step costs O(window), not O(tokens so far)."""
            b, r = self.b, self.b.reqs[i]
            tok = b.engine.tokenizer
            ids, p0, p1 = r.token_ids, b.prefix_off[i], b.read_off[i]
            if p1 >= len(ids):
                return
            prefix = tok.decode(ids[p0:p1], skip_special_tokens=True)
            full = tok.decode(ids[p0:], skip_special_tokens=True)
            if not final and (len(full) <= len(prefix) or full.endswith("\ufffd")):
                return  # nothing printable yet, or an incomplete multi-byte character: wait for the rest
            piece = full[len(prefix):]
            b.prefix_off[i], b.read_off[i] = p1, len(ids)
            if not piece:
                return
            r.text += piece
            if r.on_text is not None:
                try:
                    r.on_text(piece)
                except Exception:
                    log.exception("streaming callback failed")
                    r.cancelled = True

        def end(self) -> None:
            for i in range(len(self.b.reqs)):
                self._emit(i, final=True)

    return RowStreamer
