/**
 * The exact text of a JSON object's member values, so a message can be forwarded as its sender
 * wrote it: parsing and serialising again would turn `1e400` into `null` and round
 * `123456789012345678901234567890` to `1.2345678901234568e+29`.
 *
 * `text` must already have passed `JSON.parse` as an object: this only finds where each value
 * starts and ends. A repeated key keeps its last value, as `JSON.parse` does, so the text always
 * belongs to the value the parsed object holds.
 */
export function memberTexts(text: string): Map<string, string> {
  const members = new Map<string, string>();
  let i = skipSpace(text, 0);
  if (text[i] !== '{') throw new Error('not a JSON object');
  i = skipSpace(text, i + 1);
  if (text[i] === '}') return members;
  for (;;) {
    const keyStart = i;
    i = endOfString(text, i);
    const key = JSON.parse(text.slice(keyStart, i)) as string;
    i = skipSpace(text, i);
    if (text[i] !== ':') throw new Error('not a JSON object');
    const valueStart = skipSpace(text, i + 1);
    i = endOfValue(text, valueStart);
    members.set(key, text.slice(valueStart, i));
    i = skipSpace(text, i);
    if (text[i] === '}') return members;
    if (text[i] !== ',') throw new Error('not a JSON object');
    i = skipSpace(text, i + 1);
  }
}

function skipSpace(text: string, i: number): number {
  while (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r') i++;
  return i;
}

/** `i` is at an opening quote; returns the index after the closing one. */
function endOfString(text: string, i: number): number {
  if (text[i] !== '"') throw new Error('not a JSON string');
  let j = i + 1;
  while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
  if (j >= text.length) throw new Error('unterminated JSON string');
  return j + 1;
}

/** `i` is at the first character of a value; returns the index after its last. */
function endOfValue(text: string, i: number): number {
  const first = text[i];
  if (first === '"') return endOfString(text, i);
  if (first === '{' || first === '[') {
    let depth = 0;
    let j = i;
    while (j < text.length) {
      const ch = text[j];
      if (ch === '"') {
        j = endOfString(text, j);
        continue;
      }
      if (ch === '{' || ch === '[') {
        depth++;
      } else if (ch === '}' || ch === ']') {
        depth--;
        if (depth === 0) return j + 1;
      }
      j++;
    }
    throw new Error('unterminated JSON value');
  }
  // A number, true, false or null: up to the next delimiter.
  let j = i;
  while (j < text.length && !',}] \t\n\r'.includes(text[j])) j++;
  if (j === i) throw new Error('no JSON value');
  return j;
}
