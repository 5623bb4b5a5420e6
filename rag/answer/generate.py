"""Generators: a model writes a JSON answer constrained to `generation_schema`, the service grounds it (grounding.py).

Backends (chosen by settings.generator, built by `make_generator`):
- `TransformersGenerator`: a local transformers model in process (GPU bf16/fp16, or CPU fp32), optional peft LoRA
  adapter, JSON-schema-constrained decoding, streaming.
- `OpenAIGenerator`: any OpenAI-compatible server (vLLM in production, `rag.model_server` locally) through
  `response_format={"type": "json_schema", ...}`, over httpx; streaming through SSE.

Constrained decoding: llguidance (the engine outlines 1.3.3 uses as its `backend="llguidance"`) computes a token mask
per step from the JSON schema. It is applied by our own logits processor rather than through outlines' transformers
wrapper, because that wrapper cannot stream (`generate_stream` raises NotImplementedError), takes one grammar per
batch, and its mask kernel is `torch.compile`d (tens of seconds on a CPU, per process). Outlines' default backend
(outlines_core) builds a full token index per schema: with this schema's length limits that took 132 s and more
than 12 GB, so it is not usable here. The processor also enforces a token budget: when a constrained row nears
max_new_tokens it is steered to close the JSON (`"`, `]`, `}`), so a truncated generation is still valid JSON.

`LocalEngine` (shared by `TransformersGenerator` and `rag.model_server`) runs a batch of requests in one
`model.generate` call: per-row grammars (or none), per-row token budgets, per-row streaming callbacks,
cancellation.
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rag.answer.grounding import generation_schema, parse_json
from rag.answer.prompts import TEMPLATED_FORMATS, build_messages, check_format, render
from rag.answer.schema import Turn
from rag.errors import InvalidInput, ModelUnavailable
from rag.evidence import Evidence

if TYPE_CHECKING:
    from rag.settings import Settings

log = logging.getLogger(__name__)

CLOSE_RESERVE_MAX = 48  # tokens kept at the end of a constrained generation to close the JSON


@dataclass(slots=True)
class GenerationResult:
    raw_text: str
    raw_json: dict[str, Any] | None
    prompt_format: str
    model: str | None
    tokens_out: int
    seconds: float
    finish_reason: str | None = None  # "stop" | "length" | ...
    ttft_s: float | None = None


@runtime_checkable
class Generator(Protocol):
    name: str
    model: str | None

    def generate(self, question: str, evidence: Evidence, history: Sequence[Turn] = ()) -> GenerationResult: ...

    def stream(self, question: str, evidence: Evidence, history: Sequence[Turn] = ()) -> Iterator[str]: ...


def _as_json(text: str) -> dict[str, Any] | None:
    try:
        obj = parse_json(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


# ---------------------------------------------------------------------------------------------------------------
# the local engine


@dataclass(eq=False)
class GenRequest:
    """One generation: a rendered prompt, an optional JSON schema, a budget; results are filled in by the engine."""

    prompt: str
    schema: dict[str, Any] | None = None
    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    add_special_tokens: bool = False  # True for plain-text formats (adds BOS where the tokenizer uses one)
    on_text: Callable[[str], None] | None = None  # streaming callback, called from the generating thread
    cancelled: bool = False
    # results
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    prompt_tokens: int = 0
    finish_reason: str | None = None
    error: str | None = None
    t_start: float = 0.0
    t_first: float | None = None
    t_end: float = 0.0

    @property
    def tokens_out(self) -> int:
        return len(self.token_ids)

    @property
    def seconds(self) -> float:
        return max(0.0, self.t_end - self.t_start)

    @property
    def ttft(self) -> float | None:
        return None if self.t_first is None else self.t_first - self.t_start

    @property
    def sampling_key(self) -> tuple[float, float]:
        return (round(self.temperature, 4), round(self.top_p, 4)) if self.temperature > 0 else (0.0, 1.0)


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
                except Exception:  # noqa: BLE001 - a broken consumer must not kill the batch
                    log.exception("streaming callback failed")
                    r.cancelled = True

        def end(self) -> None:
            for i in range(len(self.b.reqs)):
                self._emit(i, final=True)

    return RowStreamer


def _pick_device(device: str | None) -> str:
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


class LocalEngine:
    """A transformers causal LM + tokenizer, loaded lazily, that runs batches of `GenRequest`s."""

    def __init__(self, model_path: str, *, adapter: str | None = None, device: str | None = None,
                 dtype: str | None = None):
        self.model_path = str(model_path)
        self.adapter = adapter or None
        self.device_name = device
        self.dtype_name = dtype
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._model: Any = None
        self._tok: Any = None
        self._llg_tok: Any = None
        self._stop_ids: set[int] = set()
        self._close_str: Any = None
        self._close_struct: Any = None
        self._bitmask_buf: Any = None
        self._grammars: dict[str, str] = {}
        self.device: str | None = None
        self.dtype: Any = None
        self.max_positions: int | None = None

    # -- loading ---------------------------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def tokenizer(self) -> Any:
        self.load()
        return self._tok

    @property
    def model(self) -> Any:
        self.load()
        return self._model

    def load(self) -> None:
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is None:
                self._load()

    def _load(self) -> None:
        t0 = time.perf_counter()
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as e:  # pragma: no cover
            raise ModelUnavailable(f"transformers/torch are not installed: {e}") from e
        if not self.model_path or not Path(self.model_path).exists():
            raise ModelUnavailable(f"generator model not found: {self.model_path!r} (a local directory is required)")
        device = _pick_device(self.device_name)
        if self.dtype_name:
            dtype = getattr(torch, self.dtype_name)
        elif device.startswith("cuda"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.float32
        try:
            tok = AutoTokenizer.from_pretrained(self.model_path)
            model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=dtype)
        except (OSError, ValueError) as e:
            raise ModelUnavailable(f"cannot load generator model {self.model_path}: {e}") from e
        if self.adapter:
            try:
                from peft import PeftModel
            except ImportError as e:
                raise ModelUnavailable("a LoRA adapter is configured but peft is not installed") from e
            try:
                model = PeftModel.from_pretrained(model, self.adapter).merge_and_unload()
            except (OSError, ValueError) as e:
                raise ModelUnavailable(f"cannot load LoRA adapter {self.adapter}: {e}") from e
        model = model.to(device)  # type: ignore[arg-type]
        model.eval()
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        stop: set[int] = set()
        for x in (tok.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
            if isinstance(x, int):
                stop.add(x)
            elif isinstance(x, list | tuple):
                stop.update(int(v) for v in x)
        if not stop:
            raise ModelUnavailable(f"the tokenizer of {self.model_path} has no EOS token")
        self._stop_ids = stop
        self._tok, self._model = tok, model
        self.device, self.dtype = device, dtype
        self.max_positions = getattr(model.config, "max_position_embeddings", None)
        self._init_constraints()
        log.info("generator model %s loaded on %s (%s)%s in %.1f s", self.model_path, device, dtype,
                 f" + adapter {self.adapter}" if self.adapter else "", time.perf_counter() - t0)

    def _init_constraints(self) -> None:
        import torch

        try:
            import llguidance.hf
        except ImportError as e:
            raise ModelUnavailable("constrained decoding needs the llguidance package (pip install llguidance)") from e
        tok, model = self._tok, self._model
        n_vocab = int(model.config.get_text_config().vocab_size) if hasattr(model.config, "get_text_config") \
            else int(model.config.vocab_size)
        n_vocab = max(n_vocab, len(tok))
        self._llg_tok = llguidance.hf.from_tokenizer(tok, n_vocab=n_vocab, eos_token=sorted(self._stop_ids))

        def single_tokens(strings: Sequence[str]) -> Any:
            ids = {x[0] for x in (tok.encode(s, add_special_tokens=False) for s in strings) if len(x) == 1}
            return torch.tensor(sorted(ids), dtype=torch.long) if ids else None

        self._close_str = single_tokens(['"', '"]', '"}', '"]}', '"}]', '"}]}'])
        self._close_struct = single_tokens(["]", "}", "]}", "}]", "}]}", "]}]", "}}", "]]", "[]", "[]}", '""',
                                            '""]', '""}', '""}]'])

    def _bitmask(self, n: int) -> Any:
        import llguidance.torch as llt

        buf = self._bitmask_buf
        if buf is None or buf.shape[0] < n:
            buf = self._bitmask_buf = llt.allocate_token_bitmask(max(n, 8), self._llg_tok.vocab_size)
        return buf

    def grammar(self, schema: dict[str, Any]) -> str:
        """The llguidance grammar for a JSON schema (compact JSON: no free whitespace); cached."""
        from llguidance import LLMatcher

        key = json.dumps(schema, sort_keys=True)
        g = self._grammars.get(key)
        if g is None:
            g = LLMatcher.grammar_from_json_schema(schema, defaults={"whitespace_flexible": False})
            if len(self._grammars) > 256:
                self._grammars.clear()
            self._grammars[key] = g
        return g

    def check_schema(self, schema: dict[str, Any]) -> str | None:
        """None when the schema compiles to a grammar, else the error."""
        from llguidance import LLMatcher

        self.load()
        try:
            err = LLMatcher.validate_grammar(self.grammar(schema), self._llg_tok)
        except (ValueError, TypeError) as e:
            return str(e)
        return err or None

    def render(self, format_name: str, messages: Sequence[dict[str, str]]) -> str:
        return render(format_name, messages, self.tokenizer)

    # -- running ---------------------------------------------------------------------------------------------
    def run(self, reqs: Sequence[GenRequest]) -> None:
        """Generate for every request (one generate() per sampling setting); results are written into them."""
        self.load()
        groups: dict[tuple[float, float], list[GenRequest]] = {}
        for r in reqs:
            groups.setdefault(r.sampling_key, []).append(r)
        with self._run_lock:
            for group in groups.values():
                self._run_group(group)

    def _run_group(self, reqs: list[GenRequest]) -> None:
        import torch
        from llguidance import LLMatcher
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        tok, model = self._tok, self._model
        t0 = time.perf_counter()
        live: list[GenRequest] = []
        enc: list[list[int]] = []
        matchers: list[Any] = []
        for r in reqs:
            r.t_start = t0
            ids = tok.encode(r.prompt, add_special_tokens=r.add_special_tokens)
            r.prompt_tokens = len(ids)
            if self.max_positions and len(ids) + r.max_new_tokens > self.max_positions:
                r.error, r.finish_reason, r.t_end = (
                    f"prompt too long: {len(ids)} tokens + {r.max_new_tokens} new > {self.max_positions}",
                    "error", time.perf_counter())
                continue
            m = None
            if r.schema is not None:
                try:
                    m = LLMatcher(self._llg_tok, self.grammar(r.schema), log_level=0)
                except (ValueError, TypeError) as e:
                    r.error = f"invalid JSON schema: {e}"
                if m is not None and m.is_error():
                    r.error = f"invalid JSON schema: {m.get_error()}"
                if r.error:
                    r.finish_reason, r.t_end = "error", time.perf_counter()
                    continue
            live.append(r)
            enc.append(ids)
            matchers.append(m)
        if not live:
            return
        width = max(len(x) for x in enc)
        pad = tok.pad_token_id if tok.pad_token_id is not None else min(self._stop_ids)
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in enc], dtype=torch.long, device=self.device)
        attn = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in enc], dtype=torch.long,
                            device=self.device)
        batch = _Batch(self, live, matchers, width)
        temp, top_p = live[0].sampling_key
        gc_kwargs: dict[str, Any] = {"max_new_tokens": max(r.max_new_tokens for r in live),
                                     "eos_token_id": sorted(self._stop_ids), "pad_token_id": pad,
                                     "do_sample": temp > 0}
        if temp > 0:
            gc_kwargs.update(temperature=temp, top_p=top_p, top_k=0)
        try:
            with torch.inference_mode():
                model.generate(
                    input_ids=input_ids, attention_mask=attn, generation_config=GenerationConfig(**gc_kwargs),
                    logits_processor=LogitsProcessorList([_processor_cls()(batch)]),
                    stopping_criteria=StoppingCriteriaList([_stopper_cls()(batch)]),
                    streamer=_streamer_cls()(batch),
                )
        except Exception as e:  # noqa: BLE001 - report per request; the engine stays usable
            log.exception("generation failed")
            for r in live:
                r.error = r.error or f"generation failed: {e}"
                r.finish_reason = "error"
        t1 = time.perf_counter()
        for r in live:
            r.t_end = t1
            if r.finish_reason is None:
                r.finish_reason = "length"


# ---------------------------------------------------------------------------------------------------------------
# in-process backend


class TransformersGenerator:
    """A local transformers model (optionally + LoRA adapter) with JSON-schema-constrained decoding."""

    name = "transformers"

    def __init__(self, model_path: str, adapter: str | None = None, prompt_format: str = "chat_template",
                 device: str | None = None, max_new_tokens: int = 512, *, temperature: float = 0.0,
                 dtype: str | None = None, engine: LocalEngine | None = None):
        self.prompt_format = check_format(prompt_format)
        self.model: str | None = str(model_path)
        self.max_new_tokens = int(max_new_tokens)
        self.temperature = float(temperature)
        self.engine = engine or LocalEngine(str(model_path), adapter=adapter, device=device, dtype=dtype)

    def request(self, question: str, evidence: Evidence, history: Sequence[Turn] = (), *,
                constrained: bool = True) -> GenRequest:
        msgs = build_messages(question, evidence, history, evidence.language)
        prompt = self.engine.render(self.prompt_format, msgs)
        schema = generation_schema([s.sid for s in evidence.sources]) if constrained else None
        return GenRequest(prompt=prompt, schema=schema, max_new_tokens=self.max_new_tokens,
                          temperature=self.temperature,
                          add_special_tokens=self.prompt_format not in TEMPLATED_FORMATS)

    def _result(self, r: GenRequest) -> GenerationResult:
        if r.error and not r.token_ids:
            raise ModelUnavailable(r.error)
        return GenerationResult(raw_text=r.text, raw_json=_as_json(r.text), prompt_format=self.prompt_format,
                                model=self.model, tokens_out=r.tokens_out, seconds=r.seconds,
                                finish_reason=r.finish_reason, ttft_s=r.ttft)

    def generate(self, question: str, evidence: Evidence, history: Sequence[Turn] = ()) -> GenerationResult:
        r = self.request(question, evidence, history)
        self.engine.run([r])
        return self._result(r)

    def stream(self, question: str, evidence: Evidence, history: Sequence[Turn] = ()) -> Iterator[str]:
        r = self.request(question, evidence, history)
        q: queue.Queue[str | None] = queue.Queue()
        r.on_text = q.put
        failure: list[BaseException] = []

        def work() -> None:
            try:
                self.engine.run([r])
            except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
                failure.append(e)
            finally:
                q.put(None)

        th = threading.Thread(target=work, name="drugrag-generate", daemon=True)
        th.start()
        try:
            while True:
                piece = q.get()
                if piece is None:
                    break
                yield piece
        finally:
            r.cancelled = True  # consumer gone (or done): stop generating
        th.join()
        if failure:
            raise failure[0]
        if r.error and not r.token_ids:
            raise ModelUnavailable(r.error)


# ---------------------------------------------------------------------------------------------------------------
# OpenAI-compatible HTTP backend


class OpenAIGenerator:
    """Any OpenAI-compatible chat-completions server (vLLM, rag.model_server) with a json_schema response format."""

    name = "openai"

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = "EMPTY",
                 timeout: float = 60.0, *, max_new_tokens: int = 512, temperature: float = 0.0,
                 chat_template_kwargs: dict[str, Any] | None = None, client: Any = None):
        """chat_template_kwargs: sent as vLLM's extra `chat_template_kwargs` (default: enable_thinking off, so
        Qwen3-style templates start the JSON at once); pass {} to send nothing."""
        import httpx

        self.base_url = base_url.rstrip("/")
        self.model: str | None = model or None
        self.prompt_format = "chat_template"  # the server applies its model's chat template
        self.max_new_tokens = int(max_new_tokens)
        self.temperature = float(temperature)
        self.chat_template_kwargs = {"enable_thinking": False} if chat_template_kwargs is None \
            else dict(chat_template_kwargs)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = client or httpx.Client(timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
                                              headers=headers)

    def close(self) -> None:
        self._client.close()

    def _unavailable(self, e: Exception) -> ModelUnavailable:
        return ModelUnavailable(f"model server {self.base_url} unavailable: {type(e).__name__}: {e}")

    def _model_name(self) -> str:
        if self.model:
            return self.model
        import httpx

        try:
            resp = self._client.get(f"{self.base_url}/models")
            resp.raise_for_status()
            data = resp.json().get("data") or []
        except (httpx.HTTPError, ValueError) as e:
            raise self._unavailable(e) from e
        if not data:
            raise ModelUnavailable(f"model server {self.base_url} serves no model")
        self.model = str(data[0]["id"])
        return self.model

    def payload(self, question: str, evidence: Evidence, history: Sequence[Turn] = (), *,
                stream: bool = False, constrained: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._model_name(),
            "messages": build_messages(question, evidence, history, evidence.language),
            "temperature": self.temperature,
            "max_tokens": self.max_new_tokens,
            "stream": stream,
        }
        if constrained:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "drug_answer", "schema": generation_schema([s.sid for s in evidence.sources]),
                "strict": True}}
        if stream:
            body["stream_options"] = {"include_usage": True}
        if self.chat_template_kwargs:
            body["chat_template_kwargs"] = self.chat_template_kwargs
        return body

    def generate(self, question: str, evidence: Evidence, history: Sequence[Turn] = ()) -> GenerationResult:
        import httpx

        body = self.payload(question, evidence, history)
        t0 = time.perf_counter()
        try:
            resp = self._client.post(f"{self.base_url}/chat/completions", json=body)
        except httpx.HTTPError as e:
            raise self._unavailable(e) from e
        if resp.status_code >= 400:
            raise ModelUnavailable(f"model server {self.base_url} answered {resp.status_code}: {resp.text[:300]}")
        try:
            data = resp.json()
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise ModelUnavailable(f"model server {self.base_url} sent an unexpected reply: {e}") from e
        usage = data.get("usage") or {}
        return GenerationResult(raw_text=text, raw_json=_as_json(text), prompt_format=self.prompt_format,
                                model=str(data.get("model") or self.model), tokens_out=int(usage.get("completion_tokens") or 0),
                                seconds=time.perf_counter() - t0, finish_reason=choice.get("finish_reason"))

    def stream(self, question: str, evidence: Evidence, history: Sequence[Turn] = ()) -> Iterator[str]:
        import httpx

        body = self.payload(question, evidence, history, stream=True)
        try:
            with self._client.stream("POST", f"{self.base_url}/chat/completions", json=body) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise ModelUnavailable(
                        f"model server {self.base_url} answered {resp.status_code}: {resp.text[:300]}")
                yield from iter_sse_content(resp.iter_lines())
        except httpx.HTTPError as e:
            raise self._unavailable(e) from e


def iter_sse_content(lines: Iterator[str]) -> Iterator[str]:
    """Content deltas from OpenAI chat-completion SSE lines (`data: {...}` ... `data: [DONE]`)."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            continue
        if chunk.get("error"):
            raise ModelUnavailable(f"model server error: {chunk['error']}")
        for choice in chunk.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                yield piece


# ---------------------------------------------------------------------------------------------------------------


class AnswerTextStream:
    """Incrementally extracts the decoded value of the top-level "answer" string from a streamed JSON answer, so a
    UI can show the prose while the model writes it: feed(piece) -> the new answer text (maybe '')."""

    _ESC = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}

    def __init__(self) -> None:
        self.buf = ""
        self.pos: int | None = None  # index in buf of the next unread char of the answer string
        self.closed = False

    def feed(self, piece: str) -> str:
        self.buf += piece
        if self.closed:
            return ""
        if self.pos is None:
            import re

            m = re.search(r'"answer"\s*:\s*"', self.buf)
            if not m:
                return ""
            self.pos = m.end()
        out: list[str] = []
        i, s = self.pos, self.buf
        while i < len(s):
            c = s[i]
            if c == '"':
                self.closed = True
                i += 1
                break
            if c == "\\":
                if i + 1 >= len(s):
                    break
                e = s[i + 1]
                if e == "u":
                    if i + 6 > len(s):
                        break
                    try:
                        out.append(chr(int(s[i + 2: i + 6], 16)))
                    except ValueError:
                        pass
                    i += 6
                    continue
                out.append(self._ESC.get(e, e))
                i += 2
                continue
            out.append(c)
            i += 1
        self.pos = i
        return "".join(out)


def make_generator(settings: Settings) -> Generator | None:
    """The configured generator, or None for the extractive builder."""
    kind = settings.generator
    if kind == "extractive":
        return None
    if kind == "transformers":
        if not settings.generator_model:
            raise ModelUnavailable("generator=transformers needs generator_model (a local model directory)")
        return TransformersGenerator(settings.generator_model, adapter=settings.generator_adapter or None,
                                     prompt_format=settings.generator_prompt_format,
                                     max_new_tokens=settings.generator_max_new_tokens)
    if kind == "openai":
        return OpenAIGenerator(settings.generator_url, settings.generator_model or None,
                               settings.generator_api_key.get_secret_value(), settings.generator_timeout_s,
                               max_new_tokens=settings.generator_max_new_tokens)
    raise InvalidInput(f"unknown generator {kind!r}")
