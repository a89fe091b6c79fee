// make_fixture.mjs: the independent reference for shelf's WordPiece tokenizer
// (src/text/wordpiece.c): Hugging Face's JavaScript tokenizer
// (@huggingface/transformers, BertTokenizer = BertNormalizer + BertPreTokenizer
// + WordPiece from @huggingface/tokenizers) tokenizes every line of corpus.txt
// with vocab.txt, without special tokens, in two configurations:
//   lower: lowercase + strip accents (bert-base-uncased), chinese chars, clean text
//   cased: no lower-casing, no accent stripping (bert-base-cased), chinese chars, clean text
//   lower_accents: lowercase, strip_accents false (shows Python's full lower-casing:
//          İ -> i + U+0307, final sigma), chinese chars, clean text
// and writes expected.jsonl: a header object {magic, version, package, ...},
// then one object per (config, line): {"config": "lower", "line": 1, "ids": [...]}
// (line numbers from 1; the corpus split on "\n", the empty piece after the
// final newline dropped). expected.jsonl and vocab.txt are committed: the C
// test (tests/unit/test_text_wordpiece.c) needs neither node nor npm.
//
// Run (Node >= 18; nothing is downloaded but the npm package, the tokenizer
// files are written to a temporary folder and loaded with remote models off):
//   mkdir -p /tmp/tokref && cd /tmp/tokref && npm install @huggingface/transformers
//   NODE_PATH=/tmp/tokref/node_modules node /path/to/shelf/tests/ref/wordpiece/make_fixture.mjs
//   (or copy/link this file into /tmp/tokref and run it there; it finds
//   corpus.txt, vocab.txt and expected.jsonl beside itself through --dir=DIR
//   when copied: node make_fixture.mjs --dir=/path/to/shelf/tests/ref/wordpiece)
// Options:
//   --vocab   first regenerate vocab.txt from the corpus (deterministic; see
//             make_vocab below), then write the fixture.
// Do not commit node_modules or package-lock.json (keep them in the scratch folder).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dirArg = process.argv.find((a) => a.startsWith('--dir='));
const DIR = dirArg ? path.resolve(dirArg.slice(6)) : here;
const CORPUS = path.join(DIR, 'corpus.txt');
const VOCAB = path.join(DIR, 'vocab.txt');
const OUT = path.join(DIR, 'expected.jsonl');

// Resolve the package from the current folder (the scratch install) or NODE_PATH.
const require = createRequire(path.join(process.cwd(), 'noop.js'));
let pkgMain;
try {
    pkgMain = require.resolve('@huggingface/transformers');
} catch {
    for (const p of (process.env.NODE_PATH || '').split(path.delimiter).filter(Boolean)) {
        const cand = path.join(p, '@huggingface', 'transformers');
        if (fs.existsSync(cand)) pkgMain = createRequire(path.join(p, 'noop.js')).resolve('@huggingface/transformers');
    }
}
if (!pkgMain) throw new Error('install @huggingface/transformers first (see the top of this file)');
const pkgJson = (name) => {
    let d = path.dirname(pkgMain);
    while (!fs.existsSync(path.join(d, 'package.json')) || JSON.parse(fs.readFileSync(path.join(d, 'package.json'))).name !== '@huggingface/transformers')
        d = path.dirname(d);
    if (name === '@huggingface/transformers') return JSON.parse(fs.readFileSync(path.join(d, 'package.json')));
    const nm = path.join(d, 'node_modules', name, 'package.json');
    const up = path.join(d, '..', '..', name, 'package.json');
    return JSON.parse(fs.readFileSync(fs.existsSync(nm) ? nm : up));
};
const { env, BertTokenizer } = await import(pkgMain.endsWith('.cjs') ? pkgMain.replace(/\.cjs$/, '.mjs') : pkgMain);

env.allowRemoteModels = false;
env.allowLocalModels = true;
const modelRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'shelf-wordpiece-'));
env.localModelPath = modelRoot + '/';

const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
const CONFIGS = [
    { name: 'lower', lowercase: true },
    { name: 'cased', lowercase: false },
    { name: 'lower_accents', lowercase: true, strip_accents: false },
];

function corpusLines() {
    const lines = fs.readFileSync(CORPUS, 'utf8').split('\n');
    if (lines.length && lines[lines.length - 1] === '') lines.pop();
    return lines;
}

function readVocab() {
    const lines = fs.readFileSync(VOCAB, 'utf8').split('\n');
    if (lines.length && lines[lines.length - 1] === '') lines.pop();
    const vocab = {};
    lines.forEach((t, i) => {
        if (t in vocab) throw new Error(`vocab.txt:${i + 1}: duplicate token ${t}`);
        vocab[t] = i;
    });
    return vocab;
}

// A BERT tokenizer.json as Hugging Face's tokenizers library writes it for
// bert-base-(un)cased (the added tokens are the specials, normalized false).
async function makeTokenizer(cfg, vocab) {
    const dir = path.join(modelRoot, cfg.name);
    fs.mkdirSync(dir, { recursive: true });
    const tj = {
        version: '1.0',
        truncation: null,
        padding: null,
        added_tokens: SPECIALS.filter((t) => t in vocab).map((t) => ({
            id: vocab[t], content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
        })),
        normalizer: {
            type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: cfg.strip_accents ?? null, lowercase: cfg.lowercase,
        },
        pre_tokenizer: { type: 'BertPreTokenizer' },
        post_processor: {
            type: 'TemplateProcessing',
            single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
            pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } },
                { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } }],
            special_tokens: {
                '[CLS]': { id: '[CLS]', ids: [vocab['[CLS]']], tokens: ['[CLS]'] },
                '[SEP]': { id: '[SEP]', ids: [vocab['[SEP]']], tokens: ['[SEP]'] },
            },
        },
        decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
        model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
    };
    const tc = {
        tokenizer_class: 'BertTokenizer', do_lower_case: cfg.lowercase, strip_accents: cfg.strip_accents ?? null, tokenize_chinese_chars: true,
        unk_token: '[UNK]', sep_token: '[SEP]', pad_token: '[PAD]', cls_token: '[CLS]', mask_token: '[MASK]',
        model_max_length: 512, clean_up_tokenization_spaces: true,
    };
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tj));
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tc));
    return BertTokenizer.from_pretrained(cfg.name, { local_files_only: true });
}

// ---- vocabulary (--vocab) ---------------------------------------------------
// Words of the corpus as the reference's own normalizer + pre-tokenizer cut
// them; then: specials, punctuation, single letters/digits and their ##
// forms (but not ##q ##x ##z, so words with those inside become [UNK] unless
// whole), Greek, Devanagari and combining marks with their ## forms, most whole words (every 7th held out, to go through ## pieces),
// stems + ## tails of long words, common suffixes, cased words, accented
// letters, a few hundred common hanzi plus the corpus's CJK characters (every
// 11th held out: [UNK]), two emoji.
async function makeVocab() {
    const bootstrap = {};
    SPECIALS.forEach((t, i) => (bootstrap[t] = i));
    const words = Object.fromEntries(CONFIGS.map((c) => [c.name, new Map()]));
    for (const cfg of CONFIGS) {
        const tok = await makeTokenizer(cfg, bootstrap);
        const t = tok._tokenizer;
        for (const line of corpusLines()) {
            for (const w of t.pre_tokenizer(t.normalizer(line))) words[cfg.name].set(w, (words[cfg.name].get(w) || 0) + 1);
        }
    }
    const out = [];
    const seen = new Set();
    const add = (t) => {
        if (t && !seen.has(t) && !/\s/.test(t)) {
            seen.add(t);
            out.push(t);
        }
    };
    SPECIALS.forEach(add);
    for (let c = 33; c < 127; c++) if (!/[A-Za-z0-9]/.test(String.fromCharCode(c))) add(String.fromCharCode(c));
    [...'，。！？（）【】、《》：；“”‘’·—–…«»•'].forEach(add);
    for (const c of 'abcdefghijklmnopqrstuvwxyz0123456789') add(c);
    for (const c of 'abcdefghijklmnopqrstuvwxyz0123456789') if (!'qxz'.includes(c)) add('##' + c);
    for (const c of 'ABCDEFGHIJKLMNOPRSTUVWY') add(c);
    for (const c of 'éèêëôâûüöäçñßïí') {
        add(c);
        add('##' + c);
    }
    // Greek (final sigma), combining marks (decomposed input kept when not
    // stripping; U+0307 from lower-casing İ), a heart + its variation selector
    for (const c of 'αβγδεζηθικλμνξοπρσςτυφχψωΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ') {
        add(c);
        add('##' + c);
    }
    for (const c of ['\u0300', '\u0301', '\u0302', '\u0307', '\u0308', '\ufe0f']) add('##' + c);
    add('\u2764');
    // Devanagari: Mc vowel signs stay when stripping, Mn (virama, anusvara) go
    for (const m of Object.values(words))
        for (const w of m.keys())
            for (const c of w)
                if (/\p{Script=Devanagari}/u.test(c)) {
                    add(c);
                    add('##' + c);
                }
    for (const s of ['s', 'es', 'ed', 'ing', 'er', 'ers', 'ly', 'ml', 'oz', 'g', 'gb', 'ness', 'tion', 'al', 'ic', 'ize', 'izing', 'ous', 'ful', 'less', 'ion', 'ation', 'ure', 'ant'])
        add('##' + s);
    const byFreq = (m) => [...m.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((e) => e[0]);
    const cjk = /\p{Script=Han}/u;
    let k = 0;
    for (const w of byFreq(words.lower)) {
        if (cjk.test(w) || [...w].length < 2) continue;
        if (++k % 7 === 0) continue; // held out
        const chars = [...w];
        if (chars.length >= 8 && k % 2 === 0) {
            const cut = Math.floor(chars.length * 0.6);
            add(chars.slice(0, cut).join(''));
            add('##' + chars.slice(cut).join(''));
        } else {
            add(w);
        }
        if (out.length > 1100) break;
    }
    let m = 0;
    for (const w of byFreq(words.cased)) {
        if (cjk.test(w) || [...w].length < 2 || !/^\p{Lu}/u.test(w)) continue;
        if (++m % 5 === 0) continue;
        add(w);
        if (m > 200) break;
    }
    const common =
        '的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校志飞观争究包组造落视济喜离虽坐集编宝谈府拉黑且随格尽剑讲布杀微怕母调局根曾准团段终乐切级克精哪官示冷域';
    let h = 0;
    const corpusHan = [];
    for (const m of Object.values(words)) for (const w of m.keys()) for (const c of w) if (cjk.test(c)) corpusHan.push(c);
    for (const c of corpusHan) {
        if (seen.has(c)) continue;
        if (++h % 11 === 0) {
            seen.add(c); // held out: stays out of the vocabulary
            continue;
        }
        add(c);
    }
    for (const c of common) add(c);
    ['💄', '✨'].forEach(add);
    fs.writeFileSync(VOCAB, out.join('\n') + '\n');
    console.error(`vocab.txt: ${out.length} tokens`);
}

// ---- fixture ------------------------------------------------------------------
if (process.argv.includes('--vocab')) await makeVocab();
const vocab = readVocab();
const lines = corpusLines();
const tf = pkgJson('@huggingface/transformers');
const tk = pkgJson('@huggingface/tokenizers');
const rows = [
    JSON.stringify({
        magic: 'shelf-wordpiece-ref', version: 1, package: `${tf.name}@${tf.version}`, tokenizers: `${tk.name}@${tk.version}`,
        node: process.version, configs: CONFIGS.map((c) => c.name), lines: lines.length, vocab: Object.keys(vocab).length,
    }),
];
const stats = {};
for (const cfg of CONFIGS) {
    const tok = await makeTokenizer(cfg, vocab);
    let n = 0, unk = 0, cont = 0;
    lines.forEach((line, i) => {
        const ids = tok.encode(line, { add_special_tokens: false });
        n += ids.length;
        unk += ids.filter((x) => x === vocab['[UNK]']).length;
        rows.push(JSON.stringify({ config: cfg.name, line: i + 1, ids }));
    });
    const t = tok._tokenizer;
    for (const line of lines) cont += t.model.encode(t.pre_tokenizer(t.normalizer(line))).filter((s) => s.startsWith('##')).length;
    stats[cfg.name] = { tokens: n, unk, continuation: cont };
}
fs.writeFileSync(OUT, rows.join('\n') + '\n');
fs.rmSync(modelRoot, { recursive: true, force: true });
console.error(`expected.jsonl: ${lines.length} lines x ${CONFIGS.length} configs, ${tf.name}@${tf.version}`, JSON.stringify(stats));
