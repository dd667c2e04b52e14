"""The workspace's two catalogues (municipal-node/web/i18n/en.json and ne.json, issue 15,
over common/web/i18n's words of the records' values),
read as files, no browser: the same keys in both, each Nepali text in Devanagari, the same
placeholders; every key a page names, and every error code the node sends (FIELD_CODES of
municipal-node/field.h, and each code its C sources give), has its words in both. A missing
Nepali text would otherwise show in English, unnoticed until a clerk read it."""
import glob
import json
import os
import re

from harness import ROOT

WEB = os.path.join(ROOT, "municipal-node", "web")
# Texts that are the same in both languages: names, and the English button of the Nepali page.
SAME = {"lang.en", "v.programme.M4SD", "v.programme.RERP"}


def catalogue(lang):
    """The node's catalogue over the one every tier's pages share (common/web/i18n), as
    common/web/i18n.js merges them."""
    with open(os.path.join(ROOT, "common", "web", "i18n", lang + ".json"),
              encoding="utf-8") as f:
        words = json.load(f)
    with open(os.path.join(WEB, "i18n", lang + ".json"), encoding="utf-8") as f:
        words.update(json.load(f))
    return words


def sources():
    for path in (glob.glob(os.path.join(WEB, "**", "*.js"), recursive=True) +
                 glob.glob(os.path.join(ROOT, "common", "web", "*.js"))):
        with open(path, encoding="utf-8") as f:
            yield path, f.read()


def field_codes():
    with open(os.path.join(ROOT, "municipal-node", "field.h")) as f:
        text = f.read()
    m = re.search(r"#define FIELD_CODES((?:.*\\\n)*.*)", text)
    return re.findall(r'"(\w+)"', m.group(1))


def test_both_catalogues_have_the_same_keys_and_placeholders():
    en, ne = catalogue("en"), catalogue("ne")
    assert len(en) > 300
    assert set(en) - set(ne) == set(), "no Nepali text"
    assert set(ne) - set(en) == set(), "no English text"
    for k in en:
        assert en[k].strip() and ne[k].strip(), k
        assert (sorted(re.findall(r"\{\w+\}", en[k])) ==
                sorted(re.findall(r"\{\w+\}", ne[k]))), (k, en[k], ne[k])
        if k not in SAME:
            assert re.search("[\u0900-\u097f]", ne[k]), ("not in Devanagari", k, ne[k])


def test_every_key_a_page_names_is_in_the_catalogue():
    en = catalogue("en")
    named, prefixes = set(), set()
    for path, text in sources():
        named |= {(path, k) for k in re.findall(r'\bt\("([\w.]+)"', text)}
        prefixes |= {(path, p) for p in re.findall(r"\bt\(`([\w.]+)\$\{", text)}
    assert len(named) > 150
    assert [x for x in named if x[1] not in en] == []
    # A key built from a value (kind.${kind}) has at least its family in the catalogue.
    assert [x for x in prefixes if not any(k.startswith(x[1]) for k in en)] == []


def test_every_error_code_of_the_node_is_said_in_both_languages():
    codes = field_codes()
    assert "date_invalid" in codes and len(codes) > 15
    for lang in ("en", "ne"):
        c = catalogue(lang)
        assert [k for k in codes if "err." + k not in c] == [], lang
    # And the C sources give no code that the list (and so the catalogues) lacks.
    given = set()
    for path in glob.glob(os.path.join(ROOT, "municipal-node", "*.c")):
        with open(path) as f:
            # The third argument: field_errors_add_code(errs, field, "code", ...).
            given |= set(re.findall(r'field_errors_add_code\(\s*[^,()]+,\s*(?:"[^"]*"|[^,"]+),'
                                    r'\s*"(\w+)"', f.read()))
    assert given, "no field_errors_add_code call found"
    assert given - set(codes) == set()
