"""Writes tests/fixtures/clip_tokenizer.json: token ids of transformers' CLIPTokenizer (transformers 5)
for tests/models/test_clip_tokenizer.cpp. Run by hand:
    python3 tests/golden/gen_clip_tokenizer.py

The vocabulary is openai/CLIP's bpe_simple_vocab_16e6.txt.gz from ../shared/data/tokenizers/clip,
turned into vocab.json / merges.txt exactly as simple_tokenizer.py builds its vocabulary (the byte
characters, the same with "</w>", the first 49152-256-2 merges, <|startoftext|>, <|endoftext|>):
the 49408-token vocabulary of openai/clip-vit-large-patch14 (SD1.x's tokenizer/). The C++ test
builds the same vocabulary from the same file (ClipTokenizer::from_merges).

Tokenizer settings as the SD pipelines call it: padding="max_length", max_length=77 (or the case's
max_length), truncation=True; pad token "<|endoftext|>". Inputs are NFC already (our tokenizer does
not NFC-normalise) and avoid the Unicode corners it approximates (see models/clip_tokenizer.h).

JSON: {"source": ..., "cases": [{"text", "max_length", "input_ids", "attention_mask",
"ids_no_pad"}]}; ids_no_pad is the same call without padding.
"""
import gzip
import json
import pathlib
import tempfile

import transformers
from transformers import CLIPTokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
BPE_FILE = ROOT.parent / "shared/data/tokenizers/clip/bpe_simple_vocab_16e6.txt.gz"
OUT = ROOT / "tests/fixtures/clip_tokenizer.json"


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def write_openai_vocab(folder):
    lines = gzip.open(BPE_FILE).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps(dict(zip(vocab, range(len(vocab)))), ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))


LONG = ("Frontal chest radiograph demonstrates a large right-sided pneumothorax with partial collapse of the right "
        "lung, mild mediastinal shift to the left, no pleural effusion, endotracheal tube 4.5 cm above the carina, "
        "nasogastric tube coursing below the diaphragm, right internal jugular central venous catheter tip in the "
        "superior vena cava, and degenerative changes of the thoracic spine.")

CASES = [
    ("a photo of a cat", 77),
    ("", 77),
    ("   ", 77),
    ("Hello, World!!!", 77),
    ("UPPER CASE Findings", 77),
    ("multiple    spaces\t\ttabs\nnewlines\r\n end", 77),
    ("it's here, they're gone, we've seen, I'm sure, you'll see, he'd go, don't", 77),
    ("IT'S DON'T THEY'RE", 77),
    ("rock'n'roll o'clock 'quoted' \"double\"", 77),
    ("12345 3.14159 -7 1e-3 2026-11-25", 77),
    ("pneumothorax 2cm x 3cm, T4-T6 level (approx.)", 77),
    ("...!?;:--__//\\\\ @#$%^&*()[]{}<>|~`+=", 77),
    ("email: dr.smith@hospital.org, url https://example.com/a?b=c", 77),
    ("N/A", 77),
    ("No acute cardiopulmonary process.", 77),
    ("Left apical pneumothorax; chest tube in place.", 77),
    ("café naïve résumé Zürich façade São Paulo", 77),
    ("ÉCOLE ÀÉÎÕÜ Ñandú", 77),
    ("naïve — em-dash “quotes” ‘single’ … ellipsis", 77),
    ("température 37.5°C ± 0.2, µg/ml, ½ dose, x² y³", 77),
    ("Ελληνικά κείμενο και Русский текст", 77),
    ("emoji 🙂 and ✓ check ★ star", 77),
    ("<|startoftext|>hello<|endoftext|>", 77),
    ("a <|endoftext|> b", 77),
    ("tab\tseparated\tvalues", 77),
    ("x" * 300, 77),
    (LONG, 77),
    (LONG, 16),
    ("short text", 8),
    ("a b c d e f g h i j", 5),
    ("pleural effusion & atelectasis; cardiomegaly (mild).", 77),
    ("supercalifragilisticexpialidocious antidisestablishmentarianism", 77),
]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        write_openai_vocab(folder)
        tok = CLIPTokenizer.from_pretrained(str(folder), model_max_length=77)
        cases = []
        for text, max_length in CASES:
            padded = tok(text, padding="max_length", max_length=max_length, truncation=True)
            plain = tok(text, max_length=max_length, truncation=True)
            cases.append({"text": text, "max_length": max_length, "input_ids": padded["input_ids"],
                          "attention_mask": padded["attention_mask"], "ids_no_pad": plain["input_ids"]})
    source = (f"transformers {transformers.__version__} CLIPTokenizer on openai/CLIP bpe_simple_vocab_16e6 "
              "(tests/golden/gen_clip_tokenizer.py)")
    OUT.write_text(json.dumps({"source": source, "cases": cases}, ensure_ascii=False, indent=None) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(cases)} cases)")


if __name__ == "__main__":
    main()
