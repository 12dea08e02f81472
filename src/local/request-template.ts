/**
 * The part of Velocity (VTL) that WebSocket request templates use in practice, rendered the way
 * API Gateway renders it:
 *
 * - references: `$context.*`, `$stageVariables.*`, `$input.body`, `$input.json('$.path')`,
 *   `$input.path('$.path')`, in the plain (`$context.x`), braced (`${context.x}`) and quiet
 *   (`$!context.x`) forms;
 * - `$util.escapeJavaScript(x)`, `$util.urlEncode(x)`, `$util.urlDecode(x)`, `$util.base64Encode(x)`,
 *   `$util.base64Decode(x)`;
 * - the Java string methods templates chain onto them: `.replaceAll(regex, replacement)` (as in
 *   API Gateway's documented `$util.escapeJavaScript($x).replaceAll("\\'","'")`), `.replace(a, b)`,
 *   `.toLowerCase()`, `.toUpperCase()`, `.trim()`.
 *
 * The template is read once, left to right: a value a reference produces (the message body, a claim)
 * is written to the output and never read again, so `$context...` text inside a client's frame stays
 * text. Directives (`#if`, `#foreach`, `#set`) are not evaluated; anything not understood is copied
 * as written.
 */

/** What a template can refer to. */
export interface TemplateSources {
  /** The frame, as the client sent it. */
  readonly body?: string;
  /** `$context`: the request context of the route event (authorizer values included). */
  readonly requestContext: Readonly<Record<string, unknown>>;
  readonly stageVariables: Readonly<Record<string, string>>;
}

/** Renders `template` against `sources`. */
export function renderTemplate(template: string, sources: TemplateSources): string {
  const renderer = new Renderer(template, sources);
  return renderer.render();
}

/**
 * `$util.escapeJavaScript`: API Gateway's is Apache Commons Lang's `StringEscapeUtils.escapeJavaScript`.
 * Backslash, both quotes and `/` get a backslash; `\b \t \n \f \r` their short escapes; other
 * control characters and everything above U+007F become `\uXXXX` (upper-case hex, UTF-16 units).
 * A single quote becomes `\'`, which is not valid JSON: templates that build JSON follow it with
 * `.replaceAll("\\'","'")`, as the API Gateway documentation says.
 */
export function escapeJavaScript(value: string): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    const ch = value[i];
    if (code > 0x7f) {
      out += `\\u${code.toString(16).toUpperCase().padStart(4, '0')}`;
    } else if (code < 0x20) {
      out += SHORT_ESCAPES[ch] ?? `\\u${code.toString(16).toUpperCase().padStart(4, '0')}`;
    } else if (ch === '\'' || ch === '"' || ch === '\\' || ch === '/') {
      out += `\\${ch}`;
    } else {
      out += ch;
    }
  }
  return out;
}

const SHORT_ESCAPES: Readonly<Record<string, string>> = { '\b': '\\b', '\t': '\\t', '\n': '\\n', '\f': '\\f', '\r': '\\r' };

/** A reference could not be read; the renderer copies it as written. */
class NotAReference extends Error {}

/** Stands for `$input`, whose members are computed from the body. */
const INPUT = Symbol('input');
/** Stands for `$util`. */
const UTIL = Symbol('util');

class Renderer {
  private position = 0;
  private parsedBody: { value: unknown } | undefined;

  constructor(private readonly template: string, private readonly sources: TemplateSources) {}

  render(): string {
    const text = this.template;
    let out = '';
    let literalStart = 0;
    for (let i = text.indexOf('$'); i !== -1; i = text.indexOf('$', i)) {
      let value: unknown;
      try {
        this.position = i;
        value = this.reference();
      } catch (err) {
        if (!(err instanceof NotAReference)) throw err;
        i += 1;
        continue;
      }
      out += text.slice(literalStart, i) + asText(value);
      i = literalStart = this.position;
    }
    return out + text.slice(literalStart);
  }

  /** `$name(.member)*`, `${name(.member)*}` or `$!...`, with the position at its `$`. */
  private reference(): unknown {
    this.expect('$');
    this.accept('!');
    const braced = this.accept('{');
    const root = this.identifier();
    let value: unknown;
    switch (root) {
      case 'context': value = this.sources.requestContext; break;
      case 'stageVariables': value = this.sources.stageVariables; break;
      case 'input': value = INPUT; break;
      case 'util': value = UTIL; break;
      default: throw new NotAReference();
    }
    let members = 0;
    while (this.peek() === '.' && /[A-Za-z_]/.test(this.template[this.position + 1] ?? '')) {
      this.position += 1;
      members += 1;
      const name = this.identifier();
      value = this.peek() === '(' ? this.call(value, name, this.argumentList()) : this.member(value, name);
    }
    if (braced) this.expect('}');
    // A bare root (`$context`) or `$input`/`$util` without a member is not a value a template writes.
    if (members === 0 || value === INPUT || value === UTIL) throw new NotAReference();
    return value;
  }

  private member(target: unknown, name: string): unknown {
    if (target === INPUT) {
      if (name === 'body') return this.sources.body ?? '';
      throw new NotAReference();
    }
    if (target === UTIL || target === null || typeof target !== 'object') return undefined;
    return Object.prototype.hasOwnProperty.call(target, name) ? (target as Record<string, unknown>)[name] : undefined;
  }

  private call(target: unknown, name: string, args: unknown[]): unknown {
    const text = (index: number) => (args[index] === undefined || args[index] === null ? '' : asText(args[index]));
    if (target === INPUT) {
      if (name === 'json') return this.json(text(0));
      if (name === 'path') return this.path(text(0));
      throw new NotAReference();
    }
    if (target === UTIL) {
      switch (name) {
        case 'escapeJavaScript': return escapeJavaScript(text(0));
        case 'urlEncode': return encodeURIComponent(text(0)).replace(/%20/g, '+').replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
        case 'urlDecode': return decodeURIComponent(text(0).replace(/\+/g, ' '));
        case 'base64Encode': return Buffer.from(text(0), 'utf8').toString('base64');
        case 'base64Decode': return Buffer.from(text(0), 'base64').toString('utf8');
        default: throw new NotAReference();
      }
    }
    if (typeof target !== 'string') return undefined;
    switch (name) {
      case 'replaceAll': return javaReplaceAll(target, text(0), text(1));
      case 'replace': return target.split(text(0)).join(text(1));
      case 'toLowerCase': return target.toLowerCase();
      case 'toUpperCase': return target.toUpperCase();
      case 'trim': return target.trim();
      default: throw new NotAReference();
    }
  }

  /** `$input.json(path)`: the JSON text at `path` (`$`: the body itself, as sent). */
  private json(path: string): string {
    const body = this.body();
    if (path.trim() === '$' && body.value !== undefined) return (this.sources.body ?? '').trim();
    return JSON.stringify(this.path(path) ?? null);
  }

  /** `$input.path(path)`: the value at `path` of the body. */
  private path(path: string): unknown {
    let current = this.body().value;
    for (const segment of path.trim().replace(/^\$\.?/, '').split('.').filter((part) => part.length > 0)) {
      if (current === null || typeof current !== 'object') return undefined;
      current = Object.prototype.hasOwnProperty.call(current, segment) ? (current as Record<string, unknown>)[segment] : undefined;
    }
    return current;
  }

  private body(): { value: unknown } {
    if (!this.parsedBody) {
      try {
        this.parsedBody = { value: JSON.parse(this.sources.body ?? '') };
      } catch {
        this.parsedBody = { value: undefined };
      }
    }
    return this.parsedBody;
  }

  /** `( arg, arg )`: string literals (taken as written, as Velocity does) or references. */
  private argumentList(): unknown[] {
    this.expect('(');
    const args: unknown[] = [];
    this.spaces();
    if (this.accept(')')) return args;
    for (;;) {
      this.spaces();
      const quote = this.peek();
      if (quote === '"' || quote === '\'') {
        const end = this.template.indexOf(quote, this.position + 1);
        if (end === -1) throw new NotAReference();
        args.push(this.template.slice(this.position + 1, end));
        this.position = end + 1;
      } else if (quote === '$') {
        args.push(this.reference());
      } else {
        throw new NotAReference();
      }
      this.spaces();
      if (this.accept(')')) return args;
      this.expect(',');
    }
  }

  private identifier(): string {
    const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.template.slice(this.position, this.position + 256));
    if (!match) throw new NotAReference();
    this.position += match[0].length;
    return match[0];
  }

  private spaces(): void {
    while (/\s/.test(this.peek() ?? '')) this.position += 1;
  }

  private peek(): string | undefined {
    return this.template[this.position];
  }

  private accept(ch: string): boolean {
    if (this.peek() !== ch) return false;
    this.position += 1;
    return true;
  }

  private expect(ch: string): void {
    if (!this.accept(ch)) throw new NotAReference();
  }
}

/** How a value is written into the output: nothing for a missing one, JSON for objects. */
function asText(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/**
 * Java's `String.replaceAll`: `regex` is a Java regular expression (the common subset JavaScript
 * shares), and in `replacement` a backslash quotes the next character and `$n` names a group.
 */
function javaReplaceAll(target: string, regex: string, replacement: string): string {
  let pattern: RegExp;
  try {
    pattern = new RegExp(regex, 'g');
  } catch {
    return target;
  }
  return target.replace(pattern, (...match: unknown[]) => {
    let out = '';
    for (let i = 0; i < replacement.length; i++) {
      const ch = replacement[i];
      if (ch === '\\' && i + 1 < replacement.length) {
        out += replacement[++i];
      } else if (ch === '$' && /\d/.test(replacement[i + 1] ?? '')) {
        const group = Number(replacement[++i]);
        out += typeof match[group] === 'string' ? match[group] : '';
      } else {
        out += ch;
      }
    }
    return out;
  });
}
