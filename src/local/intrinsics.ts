/**
 * Resolves the CloudFormation intrinsic functions a synthesized template uses in the values the
 * gateway needs (environment variables, integration URIs, table names), against local stand-ins
 * for the deployed resources: the local table name for a table's `Ref`, the local API id for an
 * API's `Ref`, and so on. What CloudFormation would only know after deploying cannot be resolved;
 * that is reported as an error naming the construct, never silently replaced.
 */

/** A value cannot be resolved locally (an import, an attribute we do not model, ...). */
export class UnresolvableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnresolvableError';
  }
}

/** What the local stand-ins of a stack's resources are called. */
export interface ResolutionContext {
  /** `AWS::Region`, `AWS::AccountId`, ... */
  readonly pseudoParameters: Readonly<Record<string, string>>;
  /** The value of `{ Ref: logicalId }` for a resource or parameter, or undefined when unknown. */
  ref(logicalId: string): string | undefined;
  /** The value of `{ Fn::GetAtt: [logicalId, attribute] }`, or undefined when unknown. */
  getAtt(logicalId: string, attribute: string): string | undefined;
}

/** Resolves every intrinsic in `value` (recursively) to plain JSON. */
export function resolveValue(value: unknown, context: ResolutionContext): unknown {
  if (Array.isArray(value)) return value.map((item) => resolveValue(item, context));
  if (value === null || typeof value !== 'object') return value;

  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 1) {
    const [name, argument] = entries[0];
    const intrinsic = INTRINSICS[name];
    if (intrinsic) return intrinsic(argument, context);
  }
  return Object.fromEntries(entries.map(([key, item]) => [key, resolveValue(item, context)]));
}

/** Resolves `value` and insists on a string (numbers and booleans are stringified, as CloudFormation does). */
export function resolveString(value: unknown, context: ResolutionContext): string {
  const resolved = resolveValue(value, context);
  if (typeof resolved === 'string') return resolved;
  if (typeof resolved === 'number' || typeof resolved === 'boolean') return String(resolved);
  throw new UnresolvableError(`expected a string, got ${JSON.stringify(resolved)}`);
}

type Intrinsic = (argument: unknown, context: ResolutionContext) => unknown;

const INTRINSICS: Record<string, Intrinsic> = {
  'Ref': (argument, context) => ref(String(argument), context),

  'Fn::GetAtt': (argument, context) => {
    const [logicalId, attribute] = typeof argument === 'string'
      ? splitOnce(argument, '.')
      : (resolveValue(argument, context) as [string, string]);
    const value = context.getAtt(logicalId, attribute);
    if (value === undefined) throw new UnresolvableError(`Fn::GetAtt ${logicalId}.${attribute} has no local value`);
    return value;
  },

  'Fn::Join': (argument, context) => {
    const [delimiter, items] = argument as [string, unknown];
    const list = resolveValue(items, context);
    if (!Array.isArray(list)) throw new UnresolvableError('Fn::Join needs a list');
    return list.map((item) => String(item)).join(delimiter);
  },

  'Fn::Sub': (argument, context) => {
    const [text, variables] = typeof argument === 'string' ? [argument, {}] : (argument as [string, Record<string, unknown>]);
    const resolvedVariables = resolveValue(variables, context) as Record<string, unknown>;
    // `${!Literal}` stays `${Literal}`; `${Name}` and `${Name.Attr}` are references.
    return text.replace(/\$\{(!?)([^}]+)\}/g, (_whole, literal: string, name: string) => {
      if (literal) return `\${${name}}`;
      if (name in resolvedVariables) return String(resolvedVariables[name]);
      if (name.includes('.') && !name.startsWith('AWS::')) {
        const [logicalId, attribute] = splitOnce(name, '.');
        return String(INTRINSICS['Fn::GetAtt']([logicalId, attribute], context));
      }
      return ref(name, context);
    });
  },

  'Fn::Select': (argument, context) => {
    const [index, items] = resolveValue(argument, context) as [number | string, unknown[]];
    if (!Array.isArray(items)) throw new UnresolvableError('Fn::Select needs a list');
    return items[Number(index)];
  },

  'Fn::Split': (argument, context) => {
    const [delimiter, text] = argument as [string, unknown];
    return resolveString(text, context).split(delimiter);
  },

  'Fn::Base64': (argument, context) => Buffer.from(resolveString(argument, context)).toString('base64'),

  'Fn::ImportValue': (argument, context) => {
    throw new UnresolvableError(`Fn::ImportValue ${JSON.stringify(resolveValue(argument, context))} refers to another deployed stack`);
  },
};

function ref(name: string, context: ResolutionContext): string {
  const pseudo = context.pseudoParameters[name];
  if (pseudo !== undefined) return pseudo;
  const value = context.ref(name);
  if (value === undefined) throw new UnresolvableError(`Ref ${name} has no local value`);
  return value;
}

function splitOnce(text: string, separator: string): [string, string] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, ''] : [text.slice(0, at), text.slice(at + separator.length)];
}
