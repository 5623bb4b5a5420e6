"""Loaders that turn real drug sources into one typed model (see model.py).

Label sources (→ LoadResult): load_openfda, load_spl, load_cn_inserts. Graph sources (→ GraphRecords): load_ddinter,
load_cmedkg. A malformed record is reported in `skipped` (file, record, reason) and never aborts a load.
"""

from kb_loaders.cmedkg import load_cmedkg
from kb_loaders.cn_inserts import load_cn_inserts
from kb_loaders.ddinter import load_ddinter
from kb_loaders.openfda import load_openfda
from kb_loaders.spl import load_spl

__all__ = ["load_cmedkg", "load_cn_inserts", "load_ddinter", "load_openfda", "load_spl"]
