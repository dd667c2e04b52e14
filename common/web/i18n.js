// The pages' words: one catalogue per language (i18n/en.json, i18n/ne.json), the choice
// remembered in the browser, numbers written in the language's digits.
let lang = "en";
let words = {};
let fallback = {};
// The places' names in the language ({district: {code: name}, local_level: {code: name}}),
// null in English: the APIs name places in English, from the table the daemons compile in.
let places = null;

const LANGS = ["ne", "en"];

export function languages() {
  return LANGS;
}

export function current() {
  return lang;
}

// The remembered choice, else the browser's first preference among ours, else Nepali.
export function preferred() {
  const saved = localStorage.getItem("lang");
  if (LANGS.includes(saved)) return saved;
  for (const l of navigator.languages || []) {
    const base = l.toLowerCase().split("-")[0];
    if (LANGS.includes(base)) return base;
  }
  return "ne";
}

async function fetchJson(path) {
  const r = await fetch(path, { credentials: "same-origin" });
  if (!r.ok) throw new Error(`catalogue ${path}: ${r.status}`);
  return r.json();
}

// The page's own catalogue over the one every tier's pages share (/common/i18n: the words
// of the records' values, "v.sex.FEMALE", said alike at the node, the hub and the nation).
async function fetchCatalogue(l) {
  const [shared, own] = await Promise.all([fetchJson(`/common/i18n/${l}.json`),
                                           fetchJson(`/i18n/${l}.json`)]);
  return Object.assign(shared, own);
}

// A value of a record as the page's language says it: key of dimension dim ("sex",
// "owner_sex", "service_type", "age_band") as the catalogue words it, else as it is.
export function valueName(dim, key) {
  const base = dim.replace(/^owner_/, "").replace(/^service_type$/, "service");
  if (has(`v.${base}.${key}`)) return t(`v.${base}.${key}`);
  return key === "UNKNOWN" && has("v.UNKNOWN") ? t("v.UNKNOWN") : key;
}

export async function load(l) {
  if (!LANGS.includes(l)) l = "en";
  const [w, en, p] = await Promise.all([fetchCatalogue(l), l === "en" ? null : fetchCatalogue("en"),
                                        l === "en" ? null : nepaliPlaces()]);
  words = w;
  fallback = en || w;
  places = p;
  lang = l;
  localStorage.setItem("lang", l);
  document.documentElement.lang = l;
}

// The Nepali table itself, fetched once, whatever the page's language: a search typed in
// Nepali finds places on an English page too (a filter kept in the address across a switch).
let nepali = null;
export function nepaliPlaces() {
  if (!nepali) nepali = fetchJson("/common/places/ne.json").catch((e) => { nepali = null; throw e; });
  return nepali;
}

// A local level's name in the page's language, by its official code ("Dhankuta
// Municipality", 10703 -> "धनकुटा नगरपालिका"); en, as the API gave it, when the table has none.
export function localLevelName(code, en) {
  return (places && places.local_level[String(code)]) || en;
}

// A district's name in the page's language, by its national code 1..77.
export function districtName(code, en) {
  return (places && places.district[String(code)]) || en;
}

// A country's name in the page's language by its ISO code ("QA" -> "Qatar", "कतार"): in
// Nepali from the table (Debian's iso-codes), in English as the browser's Intl names it; ""
// when neither has a name for the code. inEnglish: the English name whatever the page's.
export function countryName(code, inEnglish) {
  if (!code) return "";
  if (!inEnglish && places && places.country && places.country[code]) return places.country[code];
  try {
    const name = new Intl.DisplayNames(["en"], { type: "region" }).of(code);
    return name && name !== code ? name : "";
  } catch (e) {
    return "";
  }
}

// An answer's area ({level, code, name}, the name in English) named in the page's language:
// a local level's or a district's by the table, a province's by the catalogue ("province.1",
// or by its English name, "province.Koshi").
export function areaName(area) {
  const en = area.name || (area.code !== undefined ? String(area.code) : "");
  if (area.level === "municipality") return localLevelName(area.code, en);
  if (area.level === "district") return districtName(area.code, en);
  if (area.level === "province") {
    for (const k of [`province.${area.code}`, `province.${area.name}`]) if (has(k)) return t(k);
  }
  return en;
}

// The text of key with {name} replaced by params.name; a key missing from the catalogue
// shows the English text (and, missing there too, the key itself, so that a test sees it).
export function t(key, params) {
  let s = words[key] ?? fallback[key] ?? key;
  if (params) {
    s = s.replace(/\{(\w+)\}/g, (m, name) =>
      params[name] === undefined ? m : String(params[name]));
  }
  return s;
}

export function has(key) {
  return key in words;
}

const DEVA = "०१२३४५६७८९";

// Digits of text in the language (Devanagari for Nepali).
export function digits(text) {
  const s = String(text);
  return lang === "ne" ? s.replace(/[0-9]/g, (d) => DEVA[d]) : s;
}

// Devanagari digits typed by a clerk, as the ASCII digits the API reads.
export function asciiDigits(text) {
  return String(text).replace(/[०-९]/g, (d) => String(DEVA.indexOf(d)));
}

// A whole number as Nepal writes it: grouped in lakhs and crores (12,34,567), in the
// language's digits. Written here rather than by Intl, whose Nepali data a browser may lack.
export function num(n) {
  if (n === null || n === undefined || n === "") return "";
  const v = Math.trunc(Number(n));
  if (!Number.isFinite(v)) return String(n);
  const s = String(Math.abs(v));
  let out = s.slice(-3);
  for (let rest = s.slice(0, -3); rest; rest = rest.slice(0, -2)) out = `${rest.slice(-2)},${out}`;
  return digits((v < 0 ? "-" : "") + out);
}

// A chart axis's tick in the page's digits: whole numbers as num() groups them, others as
// they are.
export function tickNum(v) {
  return Number.isInteger(v) ? num(v) : digits(String(v));
}
