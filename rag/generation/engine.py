"""LocalEngine: a transformers causal LM + tokenizer, loaded lazily, that runs batches of `GenRequest`s in one
`model.generate` call each: per-row grammars (or none), per-row token budgets, per-row streaming callbacks,
cancellation. Shared by rag.generation.in_process.TransformersGenerator and the CPU model server (bench/).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.answer.prompts import render
from rag.core.errors import ModelUnavailable
from rag.generation.decoding import _Batch, _processor_cls, _stopper_cls, _streamer_cls

log = logging.getLogger(__name__)


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
        except Exception as e:
            log.exception("generation failed")
            for r in live:
                r.error = r.error or f"generation failed: {e}"
                r.finish_reason = "error"
        t1 = time.perf_counter()
        for r in live:
            r.t_end = t1
            if r.finish_reason is None:
                r.finish_reason = "length"
