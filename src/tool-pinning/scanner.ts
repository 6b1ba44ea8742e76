/**
 * The gateway's own scanner of tool definitions: rules over every string a definition carries
 * (its description, title, and everything inside its schemas: property names, descriptions,
 * defaults, enums, examples), each rule with the reason it exists. A definition with any
 * finding is flagged: held in `enforce` mode until an administrator approves it.
 *
 * Tool poisoning hides instructions for the model in text the user rarely reads; the rules
 * look for what such text needs to do its work (address the model, reach secrets, send data
 * somewhere, steer other tools) and for ways of hiding it (invisible or reordering Unicode,
 * terminal escapes, encodings, other languages, text far longer than its peers'). Encoded
 * blobs are decoded and the decoded text is scanned again. docs/tool-pinning.md lists the
 * rules and their measured rates.
 *
 * A scanner of patterns can be evaded by a payload it does not know; it is one layer. The pin
 * is the other: whatever the scanner misses, a change after approval is still held.
 */
import { deflateSync } from 'node:zlib';
import type { PinnedDefinition } from './definitions.js';

/** Longer than any description the real servers measured publish (2 781 characters). */
const MAX_DESCRIPTION = 6000;

/** One thing a rule found, where. */
export interface Finding {
  rule: string;
  /** JSON-path-like location: `description`, `inputSchema.properties.notes.description`. */
  where: string;
  /** The matched text, shortened, invisible characters shown as `<U+XXXX>`. */
  excerpt: string;
}

/** What a rule may know besides the definition: the tools of the other servers. */
export interface ScanContext {
  /** Tool names listed by other servers behind the gateway (never this one's). */
  otherServersTools: ReadonlySet<string>;
  /** The description lengths of this server's definitions (for the length rule). */
  peerDescriptionLengths: readonly number[];
}

export interface TextRule {
  id: string;
  /** Why the rule exists, shown to administrators beside its findings. */
  reason: string;
  patterns: readonly RegExp[];
}

/** Rules applied to every string of a definition (and to decoded blobs). */
export const TEXT_RULES: readonly TextRule[] = [
  {
    id: 'model-instructions',
    reason:
      'Text addressed to the model rather than the user (tags such as <IMPORTANT>, "ignore ' +
      'previous instructions", "do not tell the user") is how poisoned descriptions take over ' +
      'an agent; a tool description only needs to say what the tool does.',
    patterns: [
      /<\s*\/?\s*(important|system|instructions?|secret|hidden|admin|critical|context|note)\b[^>]{0,40}>/i,
      /\b(ignore|disregard|forget|override)\s+(all\s+|any\s+)?(the\s+)?(previous|prior|above|earlier|other|existing|system)\s+(instructions?|prompts?|messages?|rules?|directions?|guidelines?)/i,
      /\b(do\s+not|don'?t|never|must\s+not)\s+(tell|inform|mention|reveal|show|notify|alert|disclose)\b[^.]{0,40}\buser\b/i,
      /\bwithout\s+(telling|informing|notifying|alerting|asking)\s+(the\s+)?user\b/i,
      /\buser\s+(must|should|will|needs?\s+to)\s+not\s+(know|see|notice|be\s+told|be\s+informed)/i,
      /\b(very|extremely)\s+(important|critical)\b[^.]{0,80}\b(otherwise|or\s+else|will\s+not\s+work|will\s+fail)/i,
      /\bbefore\s+(using|calling|invoking|running)\s+(this|the|any)\s+tool\b[^.]{0,120}\b(read|cat|open|send|pass|include|call|fetch|upload)\b/i,
      /\b(system\s+prompt|conversation\s+history|chat\s+history|previous\s+messages)\b[^.]{0,80}\b(send|pass|include|append|copy|forward|add)\b/i,
      /\b(send|pass|include|append|copy|forward|add)\b[^.]{0,80}\b(system\s+prompt|conversation\s+history|chat\s+history|previous\s+messages)\b/i,
      /\b(act|behave|respond)\s+as\s+if\b/i,
      /\bthis\s+(tool|description)\s+(overrides?|supersedes?|replaces?)\b/i,
      /\b(no|there\s+is\s+no)\s+need\s+to\s+(mention|tell|explain|inform|say)\b/i,
      /\bdo\s+not\s+(point\s+(this|it)\s+out|explain\s+(this|why|it))\b/i,
      /\bwithout\s+(further|any|an?)\s+explanation\b/i,
      /\b(first|before)\b[^.]{0,30}\b(any|every|all)\s+other\s+tools?\b/i,
      /\bon\s+every\s+(user\s+)?(request|message|turn|prompt|answer|response)\b/i,
      /\b(assistant|ai|model|llm|agent)\s*[:,]\s*(always|never|you\s+must|do\s+not|please)\b/i,
      /\b(send|pass|include|append|copy|forward|add)\b[^.]{0,80}\b(conversation|chat)\s+(so\s+far|until\s+now)\b/i,
      /\b(skip|bypass|without)\s+(the\s+|any\s+)?(usual\s+)?(confirmation|approval|asking|confirming)\b/i,
      /\bpre-?approved\b/i,
      /\bnever\s+ask\s+(the\s+)?user\b/i,
      /\b(reminder|note|notice|directive|instructions?|message)\s+(for|to)\s+(the\s+)?(assistants?|ai|models?|llms?|agents?)\b/i,
      /\b(the|an?)\s+(assistant|model|agent|llm)\s+(must|should|has\s+to|needs\s+to)\b/i,
      /\b(operator|system|admin(istrator)?)\s+(directive|override|instruction)\b/i,
    ],
  },
  {
    id: 'secret-access',
    reason:
      'A tool description has no reason to name secret files or credentials (SSH keys, .env, ' +
      'mcp.json, cloud credentials): poisoned tools ask the model to read them and pass them ' +
      'along.',
    patterns: [
      /~\/\.[\w.-]+/,
      /\.ssh\b/i,
      /(^|[^a-z0-9])id[_\s-]?(rsa|dsa|ecdsa|ed25519)\b/i,
      /(^|[\s"'`(/])\.env\b/i,
      /\bmcp\.json\b/i,
      /\bclaude_desktop_config\b/i,
      /\.(aws|kube|docker|gnupg|config\/gcloud)\//i,
      /\.(npmrc|netrc|pgpass|git-credentials)\b/i,
      /\/etc\/(passwd|shadow|sudoers)\b/i,
      /\bprivate[\s_-]?keys?\b/i,
      // A secret named as something to hand over: "pass your API key", "read all credentials".
      /\b(read|send|pass|include|copy|forward|upload|leak|extract|collect|attach)\b[^.]{0,60}\b(your|the\s+user'?s|users'?|their|all|stored|saved|local)\s+(api[\s_-]?keys?|access[\s_-]?tokens?|secret[\s_-]?keys?|passwords?|credentials|cookies|session\s+tokens?)\b/i,
    ],
  },
  {
    id: 'data-exfiltration',
    reason:
      'Instructions to send data to a URL or address, or to smuggle file contents into a ' +
      'parameter, are how poisoned tools move data out; what a tool sends where is its code, ' +
      'not its description.',
    patterns: [
      /\b(send|post|upload|forward|transmit|exfiltrate|report|submit|redirect|bcc|cc)\b[^.]{0,80}\bhttps?:\/\/\S+/i,
      /\bhttps?:\/\/\S+[^.]{0,40}\b(send|post|upload|forward|transmit|exfiltrate|submit)\b/i,
      /\b(send|forward|redirect|bcc|cc|copy)\b[^.]{0,80}\b[\w.+-]+@[\w-]+\.[\w.-]+/i,
      /\b(pass|put|include|provide|add|insert|place|embed)\b[^.]{0,80}\b(content|contents|text|output|data|results?)\b[^.]{0,60}\b(as|in|into|inside|within)\b[^.]{0,40}\b(parameter|argument|field|sidenote|note|notes)\b/i,
      // A Markdown image whose URL carries data: the client fetches it and sends the data.
      /!\[[^\]]*\]\(\s*https?:\/\/[^)\s]*\?[^)\s]*=/i,
      /\b(include|send|pass|add|append|fill|ask)\b[^.]{0,60}\b(home\s+address|phone\s+number|social\s+security|credit\s+card|card\s+number|cvc|cvv|passport\s+number|date\s+of\s+birth)\b/i,
      // A URL whose query is to be filled in with something: a template for sending data.
      /https?:\/\/[^\s"'`]*[?&][\w.-]+=(<|\{|\$\{|%3C)/i,
    ],
  },
  {
    id: 'cross-tool-instructions',
    reason:
      'A definition that tells the model how to use other tools ("all emails must go to …", ' +
      '"instead of the other tool") can shadow a trusted server from an untrusted one.',
    patterns: [
      /\b(other|another|all|any|every|each)\s+(\w+\s+)?(tools?|servers?|functions?)\b[^.]{0,80}\b(must|should|always|never|instead)\b/i,
      /\bsupersedes?\s+(every|all|any)\b/i,
      /\bnever\s+(call|use|invoke)\b[^.]{0,40}\b(tool|function)\b/i,
      /\b(when|whenever|if)\b[^.]{0,40}\b(tool|function)\b[^.]{0,40}\b(is\s+)?(available|present|called|used)\b[^.]{0,80}\b(must|always|instead|also)\b/i,
      /\binstead\s+of\s+(the\s+|using\s+(the\s+)?)?[`'"]?[\w-]+[`'"]?\s+(tool|function)/i,
    ],
  },
  {
    id: 'security-weakening',
    reason:
      'Instructions to weaken the user’s security (world-writable permissions, disabled ' +
      'certificate checks, piping downloads into a shell) are what "line jumping" payloads ' +
      'slip into the commands and code a model writes.',
    patterns: [
      /\bchmod\s+(-[a-z]+\s+)*0?[67][67][67]\b/i,
      /\b(disable|skip|turn\s+off|bypass|ignore)\s+(ssl\s+|tls\s+|https\s+)?(certificate|cert|ssl|tls)\s+(verification|validation|checks?|errors)/i,
      /\bverify\s*=\s*false\b|\brejectUnauthorized\s*:\s*false\b/i,
      /\b(curl|wget)\b[^|\n]{0,120}\|\s*(sudo\s+)?(ba|z)?sh\b/i,
      /\beval\s+["']?\$\(/i,
      /\brm\s+-[a-z]*r[a-z]*f?\s+(~|\/)(\s|$|;)/i,
      /\bgit\s+push\s+(--force|-f)\b/i,
      /\bdrop\s+(schema|table|database)\b/i,
    ],
  },
  {
    id: 'translated-instructions',
    reason:
      'The same instructions in another language slip past English patterns; these are the ' +
      'published payloads ("ignore previous instructions", "do not tell the user") in the ' +
      'languages they were translated to.',
    patterns: [
      /\bignorier(e|en)\s+(alle\s+)?(vorherigen|bisherigen|obigen)\s+(anweisungen|instruktionen)/i,
      /\b(sag|erz[äa]hl|teil)(e|en)?\s+(dem|es\s+dem)\s+(benutzer|nutzer)\s+(nichts|nicht)/i,
      /\bignore[zr]?\s+(toutes\s+)?les\s+instructions\s+(pr[ée]c[ée]dentes|ant[ée]rieures)/i,
      /\bne\s+(dis|dites|r[ée]v[ée]lez?)\s+(rien|pas)\b[^.]{0,30}\butilisateur/i,
      /\binutile\s+de\s+(le\s+|la\s+)?(mentionner|dire|signaler|pr[ée]ciser)/i,
      /\bsans\s+(autre|aucune)\s+explication/i,
      /\b(nicht|kein)\s+(erw[äa]hnen|mitteilen)\b|\bohne\s+(weitere\s+)?erkl[äa]rung/i,
      /\bsin\s+(m[áa]s\s+)?explicaci[óo]n|\bno\s+es\s+necesario\s+(mencionarlo|decirlo)/i,
      /\bignora\s+(todas\s+)?las\s+instrucciones\s+(anteriores|previas)/i,
      /\bno\s+(le\s+)?(digas|menciones|informes)\b[^.]{0,30}\busuario/i,
      /\bignora\s+(tutte\s+)?le\s+istruzioni\s+precedenti/i,
      /\bignore\s+(todas\s+)?as\s+instru[çc][õo]es\s+anteriores/i,
      /игнорируй\s+(все\s+)?(предыдущие|прошлые)\s+инструкции/i,
      /не\s+(говори|сообщай)\s+пользователю/i,
      /忽略(之前|以前|上面|所有)(的)?(所有)?(指令|指示|说明)/,
      /不要(告诉|通知|提醒)用户/,
      /(以前|前)の指示を無視/,
      /ユーザーに(は)?(言わない|伝えない|知らせない)/,
      // "do not tell the user" and "the conversation history", in more languages.
      /\bnie\s+(m[óo]w|informuj|wspominaj)|\bhistori[ęea]\s+rozmowy|\bdla\s+asystenta/i,
      /사용자에게\s*(알리지|말하지)|대화\s*(기록|내역)/,
      /لا\s+(تذكر|تخبر|تبلغ)|سجل\s+المحادثة/,
      /\bnon\s+(dire|menzionare|rivelare)\b[^.]{0,20}\butente|\bcronologia\s+della\s+(conversazione|chat)/i,
      /\bn[ãa]o\s+(diga|mencione|informe|conte)\b[^.]{0,20}\busu[áa]rio|\bhist[óo]rico\s+da\s+conversa/i,
      /\bnegeer\s+(alle\s+)?(vorige|eerdere)\s+instructies|\bvertel\b[^.]{0,20}\bgebruiker\s+niet/i,
      /истори[яюи]\s+(переписки|разговора|чата|диалога)/i,
      /对话(历史|记录)|会話(履歴|の履歴)/,
      /उपयोगकर्ता\s+को\s+(न\s+बताएं|मत\s+बताना|न\s+बताना)/,
      /\bgespr[äa]chsverlauf|\bhistorique\s+de\s+(la\s+)?conversation|\bhistorial\s+de\s+(la\s+)?conversaci[óo]n/i,
    ],
  },
];

/** Invisible, reordering and terminal-control characters: nothing a description needs. */
const HIDDEN_CHARACTERS =
  // Control characters and lone combining marks (variation selectors) are what it looks for.
  // eslint-disable-next-line no-control-regex, no-misleading-character-class
  /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb\u{e0000}-\u{e007f}\u{e0100}-\u{e01ef}]/u;

/** Encoded runs long enough to hide a sentence: base64 (standard or URL-safe), hex, base32. */
const BASE64_RUN = /[A-Za-z0-9+/_-]{20,}={0,2}/g;
const HEX_RUN = /\b(?:[0-9a-fA-F]{2}){16,}\b/g;
const BASE32_RUN = /\b[A-Z2-7]{24,}=*/g;
/** Percent-encoded and HTML-entity runs (`%49%6E…`, `&#x46;&#x6f;…`). */
const PERCENT_RUN = /(?:%[0-9a-fA-F]{2}){8,}/g;
const ENTITY_RUN = /(?:&#(?:x[0-9a-fA-F]{1,6}|[0-9]{1,7});){6,}/g;

/** The other rules, with their reasons (docs/tool-pinning.md prints all of them). */
export const STRUCTURE_RULES = {
  'hidden-characters': {
    reason:
      'Invisible (zero-width, Unicode tag, supplementary variation selector) and ' +
      'bidirectional-control characters show the user one text and the model another; ' +
      'terminal escapes hide text in a terminal. A description needs none of them; the text ' +
      'tags and variation selectors spell is decoded and scanned too.',
  },
  'encoded-payload': {
    reason:
      'A base64, base32, hex, percent-encoded or HTML-entity run that decodes to text hides ' +
      'that text from a reader; the decoded text (and ROT13 text that says it is ROT13) is ' +
      'scanned with the other rules too.',
  },
  'schema-poisoning': {
    reason:
      'A property name is an identifier; one that reads as a sentence carries instructions ' +
      'through the schema, where few look, and one that asks for the model’s own context ' +
      '(system prompt, conversation history, chain of thought) makes the model fill it in.',
  },
  padding: {
    reason:
      'Long runs of spaces or blank lines push text out of view in the client’s interface ' +
      'while the model still reads it.',
  },
  'length-anomaly': {
    reason:
      'A description over 6 000 characters, or five times the server’s typical one (and over ' +
      '2 000), or mostly repeated filler, is where hidden instructions usually sit; it is held ' +
      'for a look.',
  },
  classifier: {
    reason:
      'The external classifier (`toolPinning.classifier`) flagged it, or could not judge it ' +
      'and `failPolicy` is `flag`.',
  },
  'name-collision': {
    reason:
      'A tool named like another server’s tool behind the gateway can shadow it: the model ' +
      'may call the wrong one (shadowing).',
  },
} as const;

/** Shows invisible characters as `<U+XXXX>` and cuts to a readable excerpt. */
export function visible(text: string, max = 160): string {
  let out = '';
  for (const char of text) {
    const code = char.codePointAt(0)!;
    out += HIDDEN_CHARACTERS.test(char)
      ? `<U+${code.toString(16).toUpperCase().padStart(4, '0')}>`
      : char;
    if (out.length >= max) return `${out.slice(0, max)}…`;
  }
  return out;
}

/** Every string of a value with where it sits; object keys count as strings too. */
function* strings(value: unknown, where: string): Generator<[string, string]> {
  if (typeof value === 'string') {
    yield [where, value];
  } else if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) yield* strings(item, `${where}[${index}]`);
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const path = where ? `${where}.${key}` : key;
      yield [`${path} (key)`, key];
      yield* strings(item, path);
    }
  }
}

type Encoding = 'base64' | 'hex' | 'base32' | 'percent' | 'HTML entities';

/** RFC 4648 base32 to bytes (`=` padding ignored). */
function base32Bytes(run: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes: number[] = [];
  let bits = 0;
  let value = 0;
  for (const char of run.replace(/=+$/, '')) {
    value = (value << 5) | alphabet.indexOf(char);
    bits += 5;
    if (bits >= 8) {
      bytes.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(bytes);
}

function decodeRun(run: string, encoding: Encoding): string {
  switch (encoding) {
    case 'hex':
      return Buffer.from(run, 'hex').toString('utf8');
    case 'base32':
      return base32Bytes(run).toString('utf8');
    case 'percent':
      return Buffer.from(run.replace(/%/g, ''), 'hex').toString('utf8');
    case 'HTML entities':
      return [...run.matchAll(/&#(x?)([0-9a-fA-F]+);/g)]
        .map(([, hex, digits]) => String.fromCodePoint(parseInt(digits!, hex ? 16 : 10)))
        .join('');
    default:
      return Buffer.from(run.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8');
  }
}

/** Text an encoded run decodes to, when it is mostly printable prose; else undefined. */
function decodedText(run: string, encoding: Encoding): string | undefined {
  let text: string;
  try {
    text = decodeRun(run, encoding);
  } catch {
    return undefined;
  }
  if (text.length < 12 || !/\s/.test(text) || text.includes('\ufffd')) return undefined;
  const printable = [...text].filter((char) =>
    /[\p{L}\p{N}\p{P}\p{Zs}\n\r\t~<>$^=|+`]/u.test(char),
  );
  return printable.length / [...text].length >= 0.9 ? text : undefined;
}

function textFindings(text: string, where: string): Finding[] {
  const findings: Finding[] = [];
  for (const rule of TEXT_RULES) {
    for (const pattern of rule.patterns) {
      const match = pattern.exec(text);
      if (match) {
        findings.push({ rule: rule.id, where, excerpt: visible(match[0]) });
        break;
      }
    }
  }
  const hidden = HIDDEN_CHARACTERS.exec(text);
  if (hidden) {
    const start = Math.max(0, hidden.index - 20);
    findings.push({
      rule: 'hidden-characters',
      where,
      excerpt: visible(text.slice(start, hidden.index + 40)),
    });
  }
  return findings;
}

/**
 * Text spelt by invisible characters: Unicode tags (U+E0020–U+E007E spell ASCII, "ASCII
 * smuggling") and variation selectors (VS1–VS16 the bytes 0–15, VS17–VS256 the bytes 16–255,
 * the "emoji smuggling" byte encoding).
 */
function invisibleText(text: string): string {
  let tags = '';
  const bytes: number[] = [];
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (code >= 0xe0020 && code <= 0xe007e) tags += String.fromCharCode(code - 0xe0000);
    else if (code >= 0xfe00 && code <= 0xfe0f) bytes.push(code - 0xfe00);
    else if (code >= 0xe0100 && code <= 0xe01ef) bytes.push(code - 0xe0100 + 16);
  }
  return bytes.length >= 8 ? `${tags} ${Buffer.from(bytes).toString('utf8')}` : tags;
}

/** ROT13, for payloads that tell the model to apply it. */
function rot13(text: string): string {
  return text.replace(/[a-z]/gi, (char) => {
    const base = char <= 'Z' ? 65 : 97;
    return String.fromCharCode(((char.charCodeAt(0) - base + 13) % 26) + base);
  });
}

/**
 * Findings in one string: the text rules, then what hides in it (Unicode tag text, encoded
 * blobs) decoded and scanned again.
 */
function scanString(text: string, where: string): Finding[] {
  const findings = textFindings(text, where);
  const smuggled = invisibleText(text);
  if (smuggled.trim()) findings.push(...textFindings(smuggled, `${where} (invisible text)`));
  if (/\brot[\s-]?13\b/i.test(text)) {
    findings.push(...textFindings(rot13(text), `${where} (ROT13)`));
  }
  for (const [pattern, encoding] of [
    [BASE64_RUN, 'base64'],
    [HEX_RUN, 'hex'],
    [BASE32_RUN, 'base32'],
    [PERCENT_RUN, 'percent'],
    [ENTITY_RUN, 'HTML entities'],
  ] as const) {
    for (const match of text.matchAll(pattern)) {
      const decoded = decodedText(match[0], encoding);
      if (decoded === undefined) continue;
      findings.push({
        rule: 'encoded-payload',
        where,
        excerpt: `${encoding} decoding to "${visible(decoded, 120)}"`,
      });
      findings.push(...textFindings(decoded, `${where} (decoded ${encoding})`));
    }
  }
  return findings;
}

/** Property names asking for what the model holds rather than for the tool's input. */
const MODEL_CONTEXT_PROPERTY =
  /^(system_?prompt|conversation_?(history|so_?far)|chat_?history|tool_?call_?history|chain_?of_?thought|previous_?messages|hidden_?reasoning|model_?instructions)$/i;

/** Whitespace runs that push text out of view. */
const PADDING = /[ \t\u00a0]{40,}|(\r?\n[ \t]*){8,}/;

/** A schema property name that reads as a sentence (spaces, or very long), or asks for model context. */
function poisonedPropertyName(where: string, text: string): boolean {
  return (
    /\.properties\.[^.]+ \(key\)$/.test(where) &&
    (/\s/.test(text) || text.length > 64 || MODEL_CONTEXT_PROPERTY.test(text))
  );
}

function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Every finding in one definition; an empty list means it passed. */
export function scanDefinition(definition: PinnedDefinition, context: ScanContext): Finding[] {
  const findings: Finding[] = [];
  for (const [where, text] of strings(definition.definition, '')) {
    findings.push(...scanString(text, where));
    // Identifiers spell sentences with underscores: content_from_reading_ssh_id_rsa.
    if (where.endsWith(' (key)')) {
      if (/[_-]/.test(text)) findings.push(...textFindings(text.replace(/[_-]+/g, ' '), where));
      if (poisonedPropertyName(where, text)) {
        findings.push({ rule: 'schema-poisoning', where, excerpt: visible(text) });
      }
    }
    const padded = PADDING.exec(text);
    if (padded) {
      findings.push({
        rule: 'padding',
        where,
        excerpt: `${padded[0].length} whitespace characters before "${visible(text.slice(padded.index + padded[0].length), 60)}"`,
      });
    }
  }
  const description = definition.definition.description;
  if (typeof description === 'string') {
    const typical = median(context.peerDescriptionLengths);
    const repetitive =
      description.length > 2000 &&
      deflateSync(description).length / Buffer.byteLength(description) < 0.25;
    if (
      description.length > MAX_DESCRIPTION ||
      repetitive ||
      (description.length > 2000 && description.length > 5 * Math.max(typical, 100))
    ) {
      findings.push({
        rule: 'length-anomaly',
        where: 'description',
        excerpt: `${description.length} characters${repetitive ? ', mostly repeated text' : ''}; the server's median is ${typical}`,
      });
    }
    for (const name of context.otherServersTools) {
      if (name.length >= 4 && name !== definition.name && description.includes(name)) {
        findings.push({
          rule: 'cross-tool-instructions',
          where: 'description',
          excerpt: `names ${visible(name)}, a tool of another server`,
        });
        break;
      }
    }
  }
  if (definition.kind === 'tool' && context.otherServersTools.has(definition.name)) {
    findings.push({
      rule: 'name-collision',
      where: 'name',
      excerpt: `another server behind the gateway lists a tool named ${visible(definition.name)}`,
    });
  }
  return dedupe(findings);
}

/** One finding per rule and place. */
function dedupe(findings: Finding[]): Finding[] {
  const seen = new Set<string>();
  return findings.filter((finding) => {
    const key = `${finding.rule} ${finding.where}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The scan context of one server's snapshot, given the other servers' tool names. */
export function contextFor(
  definitions: readonly PinnedDefinition[],
  otherServersTools: ReadonlySet<string>,
): ScanContext {
  return {
    otherServersTools,
    peerDescriptionLengths: definitions
      .map((definition) => definition.definition.description)
      .filter((text): text is string => typeof text === 'string')
      .map((text) => text.length),
  };
}
