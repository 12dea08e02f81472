import { channelMessageFrame, errorFrame, messageFrame, MessageRejectedError, parseClientFrame, pongFrame } from '../../src/runtime/envelope';
import { Defaults } from '../../src/runtime/environment';

function rejection(body: string | undefined): { code: string; message: string } {
  try {
    parseClientFrame(body);
  } catch (err) {
    if (err instanceof MessageRejectedError) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('the frame was accepted');
}

describe('parseClientFrame', () => {
  test('reads broadcast, send and ping', () => {
    expect(parseClientFrame('{"action":"broadcast","message":"Hello everyone"}')).toEqual({ action: 'broadcast', messageJson: '"Hello everyone"' });
    expect(parseClientFrame('{"action":"send","to":"u2","message":{"n":1}}')).toEqual({ action: 'send', to: 'u2', messageJson: '{"n":1}' });
    expect(parseClientFrame('{"action":"ping"}')).toEqual({ action: 'ping' });
  });

  test('any JSON is a message, null included', () => {
    expect(parseClientFrame('{"action":"broadcast","message":null}')).toEqual({ action: 'broadcast', messageJson: 'null' });
    expect(parseClientFrame('{"action":"broadcast","message":[1,"two",false]}')).toEqual({ action: 'broadcast', messageJson: '[1,"two",false]' });
  });

  test.each([
    ['1e400 (Infinity once parsed, null once serialised again)', '1e400'],
    ['a 30-digit integer', '123456789012345678901234567890'],
    ['-0 and 1.0', '[-0,1.0,1E+2,0.1000000000000000055511151231257827]'],
    ['a nested object with big numbers, escapes and key order', '{"z":1e400,"a":{"id":123456789012345678901234567890,"s":"\\u00e9\\n\\"q\\""},"list":[ 1 , 2 ]}'],
    ['a string with brackets and quotes', '"}]\\",{["'],
  ])('keeps the JSON text of message exactly: %s', (_case, messageJson) => {
    const body = `{ "action" : "broadcast",\n  "message" : ${messageJson} }`;
    expect(parseClientFrame(body)).toEqual({ action: 'broadcast', messageJson });
    const sent = parseClientFrame(`{"action":"send","message":${messageJson},"to":"u2"}`);
    expect(sent).toEqual({ action: 'send', to: 'u2', messageJson });
  });

  test('a repeated message key takes the last value, as JSON.parse does', () => {
    expect(parseClientFrame('{"action":"broadcast","message":1,"message":{"x":[2]}}')).toEqual({ action: 'broadcast', messageJson: '{"x":[2]}' });
  });

  test.each([
    ['not JSON', 'hello', 'BadRequest', /not valid JSON/],
    ['an empty frame', '', 'BadRequest', /not valid JSON/],
    ['no body', undefined, 'BadRequest', /not valid JSON/],
    ['a JSON array', '[1,2]', 'BadRequest', /JSON object/],
    ['a JSON string', '"broadcast"', 'BadRequest', /JSON object/],
    ['JSON null', 'null', 'BadRequest', /JSON object/],
    ['no action', '{"message":"hi"}', 'BadRequest', /"action"/],
    ['a non-string action', '{"action":7}', 'BadRequest', /"action" field must be a string/],
    ['a broadcast without message', '{"action":"broadcast"}', 'BadRequest', /"message"/],
    ['a send without to', '{"action":"send","message":"hi"}', 'BadRequest', /"to"/],
    ['a send to an empty user id', '{"action":"send","to":"","message":"hi"}', 'BadRequest', /"to"/],
    ['a send to a non-string user id', '{"action":"send","to":42,"message":"hi"}', 'BadRequest', /"to"/],
    ['a send without message', '{"action":"send","to":"u2"}', 'BadRequest', /"message"/],
    ['an unknown action', '{"action":"dance"}', 'UnknownAction', /"dance".*broadcast, send, ping/],
  ])('refuses %s', (_case, body, code, message) => {
    const refused = rejection(body);
    expect(refused.code).toBe(code);
    expect(refused.message).toMatch(message);
  });

  test('accepts a frame of exactly 128 KB and refuses one byte more', () => {
    const overhead = '{"action":"broadcast","message":""}'.length;
    const atLimit = `{"action":"broadcast","message":"${'x'.repeat(Defaults.MAX_MESSAGE_BYTES - overhead)}"}`;
    expect(Buffer.byteLength(atLimit)).toBe(131_072);
    expect(parseClientFrame(atLimit).action).toBe('broadcast');

    const overLimit = `{"action":"broadcast","message":"${'x'.repeat(Defaults.MAX_MESSAGE_BYTES - overhead + 1)}"}`;
    expect(rejection(overLimit).code).toBe('TooLarge');
  });

  test('counts bytes, not characters', () => {
    // 'é' is two bytes in UTF-8: 70,000 characters are 140,000 bytes.
    expect(rejection(`{"action":"broadcast","message":"${'é'.repeat(70_000)}"}`).code).toBe('TooLarge');
  });

  test('does not echo a huge unknown action back in full', () => {
    const refused = rejection(JSON.stringify({ action: 'a'.repeat(10_000) }));
    expect(refused.code).toBe('UnknownAction');
    expect(refused.message.length).toBeLessThan(200);
  });
});

describe('server frames', () => {
  test('a message frame carries the message and the sender', () => {
    expect(JSON.parse(messageFrame('"Hello everyone"', 'user-a'))).toEqual({ message: 'Hello everyone', sender: 'user-a' });
    expect(messageFrame('{"nested":[1]}', 'user-a')).toBe('{"message":{"nested":[1]},"sender":"user-a"}');
  });

  test('the message text goes out as the client wrote it; the sender is escaped', () => {
    const body = '{"action":"broadcast","message":{"big":123456789012345678901234567890,"inf":1e400}}';
    const request = parseClientFrame(body);
    if (request.action !== 'broadcast') throw new Error('not a broadcast');
    expect(messageFrame(request.messageJson, 'a"b')).toBe('{"message":{"big":123456789012345678901234567890,"inf":1e400},"sender":"a\\"b"}');
  });

  test('a channel publish keeps the message text as the client wrote it, as broadcast does', () => {
    const body = '{"action":"publish","channel":"rooms/a","message":{"big":123456789012345678901234567890,"inf":1e400}}';
    const request = parseClientFrame(body);
    if (request.action !== 'publish') throw new Error('not a publish');
    expect(channelMessageFrame(request.channel.name, request.messageJson, 'a"b', 7))
      .toBe('{"channel":"rooms/a","message":{"big":123456789012345678901234567890,"inf":1e400},"sender":"a\\"b","id":7}');
    expect(JSON.parse(channelMessageFrame('rooms/a', 'null', undefined, 1))).toEqual({ channel: 'rooms/a', message: null, id: 1 });
  });

  test('a pong frame', () => {
    expect(JSON.parse(pongFrame())).toEqual({ action: 'pong' });
  });

  test('an error frame', () => {
    expect(JSON.parse(errorFrame('Forbidden', 'no'))).toEqual({ error: { code: 'Forbidden', message: 'no' } });
  });

  test('an outgoing frame over 128 KB is refused as TooLarge', () => {
    const sender = 'user-with-a-rather-long-identifier-0123456789';
    const message = JSON.stringify('x'.repeat(Defaults.MAX_MESSAGE_BYTES - 40));
    expect(() => messageFrame(message, sender)).toThrow(expect.objectContaining({ code: 'TooLarge' }));
  });
});

describe('channel frames', () => {
  test('subscribe, unsubscribe, publish and presence name a checked channel; requestId is kept', () => {
    expect(parseClientFrame('{"action":"subscribe","channel":"rooms/a","since":41,"requestId":"r1"}'))
      .toEqual({ action: 'subscribe', channel: { name: 'rooms/a', segments: ['rooms', 'a'], wildcard: false }, since: 41, requestId: 'r1' });
    expect(parseClientFrame('{"action":"subscribe","channel":"rooms/*"}')).toMatchObject({ channel: { wildcard: true } });
    expect(parseClientFrame('{"action":"unsubscribe","channel":"rooms/*"}')).toMatchObject({ action: 'unsubscribe' });
    expect(parseClientFrame('{"action":"publish","channel":"rooms/a","message":null}')).toMatchObject({ action: 'publish', messageJson: 'null' });
    expect(parseClientFrame('{"action":"presence","channel":"rooms/a","cursor":"abc"}')).toMatchObject({ action: 'presence', cursor: 'abc' });
  });

  test.each([
    ['a negative since', '{"action":"subscribe","channel":"rooms/a","since":-1}', /"since"/],
    ['a fractional since', '{"action":"subscribe","channel":"rooms/a","since":1.5}', /"since"/],
    ['a string since', '{"action":"subscribe","channel":"rooms/a","since":"4"}', /"since"/],
    ['since on a wildcard', '{"action":"subscribe","channel":"rooms/*","since":4}', /concrete channel/],
    ['a publish to a wildcard', '{"action":"publish","channel":"rooms/*","message":1}', /subscriptions only/],
    ['a publish without message', '{"action":"publish","channel":"rooms/a"}', /"message"/],
    ['a non-string cursor', '{"action":"presence","channel":"rooms/a","cursor":5}', /"cursor"/],
    ['a 65-character requestId', `{"action":"ping","requestId":"${'x'.repeat(65)}"}`, /"requestId"/],
    ['an empty requestId', '{"action":"ping","requestId":""}', /"requestId"/],
  ])('refuses %s as BadRequest', (_case, body, message) => {
    const refused = rejection(body);
    expect(refused.code).toBe('BadRequest');
    expect(refused.message).toMatch(message);
  });

  test('a refused channel request carries its action, channel and requestId for the error frame', () => {
    try {
      parseClientFrame('{"action":"subscribe","channel":"rooms/../x","requestId":"r9"}');
      throw new Error('accepted');
    } catch (err) {
      expect((err as MessageRejectedError).context).toEqual({ requestId: 'r9', action: 'subscribe', channel: 'rooms/../x' });
    }
    expect(errorFrame('Forbidden', 'no', { requestId: 'r7', action: 'subscribe', channel: 'users/bob' }))
      .toBe('{"error":{"code":"Forbidden","message":"no"},"requestId":"r7","action":"subscribe","channel":"users/bob"}');
  });
});
