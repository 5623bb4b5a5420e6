"""Drug-name normalisation shared by loaders, the graph and the entity linker.

`norm_name` is a canonical surface form (lowercase, punctuation folded). `base_name` also strips salt and dosage
form words so that "WARFARIN SODIUM", "Warfarin" and "warfarin sodium tablets" meet at one Drug node ("warfarin"),
and Chinese product names lose their dosage form (华法林钠片 → 华法林).
"""

from __future__ import annotations

import re
import unicodedata

# Bump when the rules below change: ingest re-derives every id that depends on them (graph sources, label chunks).
NAMES_VERSION = "2"

SALT_WORDS = frozenset(
    """sodium potassium calcium magnesium lithium zinc aluminum aluminium ammonium hydrochloride hcl
    dihydrochloride hydrobromide bromide chloride iodide fluoride sulfate sulphate bisulfate hydrogen tartrate
    bitartrate citrate maleate mesylate mesilate dimesylate besylate besilate succinate fumarate hemifumarate
    acetate diacetate phosphate diphosphate nitrate lactate gluconate tosylate malate oxalate pamoate palmitate
    propionate dipropionate valerate butyrate stearate carbonate bicarbonate trihydrate
    dihydrate monohydrate hemihydrate sesquihydrate hydrate anhydrous tromethamine meglumine disodium
    monosodium decanoate enanthate cypionate xinafoate trifenatate olamine erbumine hyclate""".split()
)
FORM_WORDS = frozenset(
    """tablet tablets capsule capsules injection injectable solution suspension oral cream ointment gel lotion
    patch patches spray syrup elixir drops drop powder granules extended release delayed film coated chewable
    orally disintegrating for usp ir er xr sr dr cr odt kit concentrate emulsion liquid foam shampoo lozenge
    suppository suppositories vial ophthalmic otic topical nasal inhalation aerosol transdermal system""".split()
)
# A name that starts with one of these is an inorganic compound or an element salt ("Sodium bicarbonate",
# "Aluminum hydroxide", "Ferrous sulfate", "Iodide I-123"): it is kept whole, never reduced to one of its words.
INORGANIC_FIRST = SALT_WORDS | frozenset(
    "ferrous ferric cupric stannous silver bismuth iron edetate glycerophosphate".split()
)
ZH_FORMS = (
    "缓释胶囊",
    "肠溶胶囊",
    "软胶囊",
    "胶囊",
    "缓释片",
    "控释片",
    "肠溶片",
    "分散片",
    "泡腾片",
    "咀嚼片",
    "薄膜衣片",
    "含片",
    "糖衣片",
    "片",
    "颗粒",
    "冲剂",
    "口服液",
    "口服溶液",
    "注射液",
    "注射剂",
    "注射用",
    "滴眼液",
    "滴丸",
    "气雾剂",
    "喷雾剂",
    "软膏",
    "乳膏",
    "凝胶",
    "贴膏",
    "贴剂",
    "栓",
    "糖浆",
    "合剂",
    "酊",
    "散",
    "丸",
    "膏",
    "剂",
)
ZH_SALTS = ("盐酸", "硫酸", "磷酸", "马来酸", "枸橼酸", "甲磺酸", "苯磺酸", "琥珀酸", "富马酸", "酒石酸", "醋酸")
ZH_SALT_SUFFIX = ("钠", "钾", "钙", "镁")

_CJK = re.compile(r"[\u3400-\u9fff]")
_PUNCT = re.compile(r"[^\w\u3400-\u9fff]+")


# a Chinese approval number (批准文号, 国药准字Z14020904) names one product exactly
APPROVAL_NUMBER = re.compile(r"国药准字\s*[A-Za-z]\s*\d{8}", re.I)


def approval_number(found: str) -> str:
    """One spelling of a matched approval number: '国药准字 z14020904' → '国药准字Z14020904'."""
    return re.sub(r"\s+", "", found).upper()


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def norm_name(name: str) -> str:
    """Lowercase, NFKC, punctuation → space, spaces collapsed. '(Warfarin Sodium)' → 'warfarin sodium'."""
    s = unicodedata.normalize("NFKC", name).lower()
    s = _PUNCT.sub(" ", s).replace("_", " ")
    return " ".join(s.split())


def base_name(name: str) -> str:
    """Name with salts and dosage forms stripped; falls back to norm_name when stripping would empty it."""
    n = norm_name(name)
    if not n:
        return n
    if has_cjk(n) and " " not in n:
        return zh_base_name(n)
    words = n.split()
    if words[0] in INORGANIC_FIRST:
        return " ".join(w for w in words if w not in FORM_WORDS) or n
    kept = [
        w
        for w in words
        if w not in SALT_WORDS and w not in FORM_WORDS and not re.fullmatch(r"[\d.]+(mg|g|ml|mcg|%)?", w)
    ]
    return " ".join(kept) if kept else n


def zh_base_name(n: str) -> str:
    s = n
    for f in ZH_FORMS:
        if s.endswith(f) and len(s) > len(f) + 1:
            s = s[: -len(f)]
            break
    if s.startswith("注射用") and len(s) > 4:
        s = s[3:]
    for salt in ZH_SALTS:
        if s.startswith(salt) and len(s) > len(salt) + 1:
            s = s[len(salt) :]
            break
    for suf in ZH_SALT_SUFFIX:
        if s.endswith(suf) and len(s) > 2:
            s = s[:-1]
            break
    return s
