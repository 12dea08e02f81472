import { RouteTarget } from '../../src';
import { escapeJavaScript, renderTemplate } from '../../src/local/request-template';

/**
 * The local renderer of request templates: API Gateway's escaping, and one pass over the template
 * so nothing a client sends is ever evaluated.
 */

const requestContext = {
  connectionId: 'L0SM9cOFvHcCIhw=',
  eventType: 'MESSAGE',
  routeKey: 'legacy',
  requestId: 'req-1',
  authorizer: { userId: 'ann', principalId: 'ann' },
};

function render(template: string, body = '{"action":"legacy"}', context: Record<string, unknown> = requestContext): string {
  return renderTemplate(template, { body, requestContext: context, stageVariables: { env: 'dev' } });
}

describe('$util.escapeJavaScript, as Commons Lang escapes (what API Gateway runs)', () => {
  test.each([
    ['quotes and backslash', 'a"b\'c\\d', 'a\\"b\\\'c\\\\d'],
    ['forward slash', '</script>', '<\\/script>'],
    ['short control escapes', '\b\t\n\f\r', '\\b\\t\\n\\f\\r'],
    ['other control characters', '\u0000\u001f\u000b', '\\u0000\\u001F\\u000B'],
    ['non-ASCII as UTF-16 units, upper-case hex', 'é€😀', '\\u00E9\\u20AC\\uD83D\\uDE00'],
    ['plain text unchanged', 'Hello, world 123', 'Hello, world 123'],
  ])('%s', (_name, input, expected) => {
    expect(escapeJavaScript(input)).toBe(expected);
  });

  test('after .replaceAll("\\\\\'","\'"), any string comes back unchanged through JSON.parse', () => {
    const nasty = 'mallory","userId":"alice\'\\\n\u0001é😀</';
    const rendered = render('{"v":"$util.escapeJavaScript($context.authorizer.userId).replaceAll("\\\\\'","\'")"}', '{}',
      { authorizer: { userId: nasty } });
    expect(JSON.parse(rendered)).toEqual({ v: nasty });
  });
});

describe('references', () => {
  test('$context, ${context}, $!context, $stageVariables, $input.body, $input.json and $input.path', () => {
    const body = '{"action":"legacy","n":{"m":[1,2]}}';
    expect(render('$context.connectionId|${context.routeKey}|$!context.missing|$stageVariables.env', body))
      .toBe('L0SM9cOFvHcCIhw=|legacy||dev');
    expect(render('$input.body|$input.json(\'$\')|$input.json(\'$.n.m\')|$input.path(\'$.action\')', body))
      .toBe(`${body}|${body}|[1,2]|legacy`);
  });

  test('$input.json(\'$\') is the body as sent, so numbers keep their digits', () => {
    const body = '{"action":"legacy","big":123456789012345678901234567890,"huge":1e400}';
    expect(render('{"body":$input.json(\'$\')}', body)).toBe(`{"body":${body}}`);
  });

  test('string methods chain onto references', () => {
    expect(render('$context.routeKey.toUpperCase()|$util.urlEncode("a b&c")|$util.base64Encode($context.routeKey)'))
      .toBe('LEGACY|a+b%26c|bGVnYWN5');
    expect(render('$context.routeKey.replace("leg","x")|$context.routeKey.replaceAll("[aeiou]","\\$0$0")')).toBe('xacy|l$0eg$0acy');
  });

  test('text that is not a reference, directives and unknown roots are copied as written', () => {
    expect(render('price: $5, #if($x) $foo.bar $input.unknown $util.nothing() $context.')).toBe('price: $5, #if($x) $foo.bar $input.unknown $util.nothing() $context.');
  });
});

describe('nothing a client sends is evaluated', () => {
  test('$context text inside the body stays text ($input.body, $input.json, $input.path)', () => {
    const body = JSON.stringify({ action: 'legacy', text: '$context.authorizer.userId ${context.connectionId} $util.escapeJavaScript($input.body)' });
    const rendered = render('{"who":"$context.authorizer.userId","body":$input.body,"json":$input.json(\'$\'),"text":"$input.path(\'$.text\')"}', body);
    const parsed = JSON.parse(rendered);
    expect(parsed.who).toBe('ann');
    expect(parsed.body).toEqual(JSON.parse(body));
    expect(parsed.json).toEqual(JSON.parse(body));
    expect(parsed.text).toBe(JSON.parse(body).text);
  });

  test('$context text inside a claim stays text', () => {
    const rendered = render('"$context.authorizer.userId"', '{}', { ...requestContext, authorizer: { userId: '$context.connectionId' } });
    expect(rendered).toBe('"$context.connectionId"');
  });
});

describe('RouteTarget.HTTP_DEFAULT_TEMPLATE', () => {
  test('a crafted user id cannot forge or add a field: every value stays the string it was', () => {
    const forged = 'mallory","userId":"alice';
    for (const userId of [forged, 'o\'brien', 'back\\slash', 'line\nbreak', 'ünïcødé 😀', '</script>']) {
      const body = JSON.stringify({ action: 'legacy', n: 1 });
      const rendered = render(RouteTarget.HTTP_DEFAULT_TEMPLATE, body, { ...requestContext, authorizer: { userId } });
      expect(JSON.parse(rendered)).toEqual({
        connectionId: 'L0SM9cOFvHcCIhw=', eventType: 'MESSAGE', routeKey: 'legacy', requestId: 'req-1', userId, body: { action: 'legacy', n: 1 },
      });
    }
  });

  test('every $context value in it is escaped', () => {
    const references = RouteTarget.HTTP_DEFAULT_TEMPLATE.match(/\$context\.[A-Za-z.]+[A-Za-z]/g) ?? [];
    expect(references.length).toBe(5);
    for (const reference of references) {
      expect(RouteTarget.HTTP_DEFAULT_TEMPLATE).toContain(`"$util.escapeJavaScript(${reference}).replaceAll("\\\\'","'")"`);
    }
  });
});
