import { localizeEndpoints } from '../../src/local/gateway';
import { ResolutionContext, resolveValue, UnresolvableError } from '../../src/local/intrinsics';

const context: ResolutionContext = {
  pseudoParameters: { 'AWS::Region': 'eu-west-1', 'AWS::URLSuffix': 'amazonaws.com' },
  ref: (logicalId) => ({ Api: 'abc123defg', Table: 'Stack-Table' } as Record<string, string>)[logicalId],
  getAtt: (logicalId, attribute) => (logicalId === 'Table' && attribute === 'Arn' ? 'arn:aws:dynamodb:eu-west-1:000000000000:table/Stack-Table' : undefined),
};

test('resolves Ref, Fn::GetAtt, Fn::Join, Fn::Sub and Fn::Select to local values', () => {
  expect(resolveValue({ Ref: 'Table' }, context)).toBe('Stack-Table');
  expect(resolveValue({ 'Fn::GetAtt': ['Table', 'Arn'] }, context)).toBe('arn:aws:dynamodb:eu-west-1:000000000000:table/Stack-Table');
  expect(resolveValue({ 'Fn::Join': ['', ['https://', { Ref: 'Api' }, '.execute-api.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }, '/dev']] }, context))
    .toBe('https://abc123defg.execute-api.eu-west-1.amazonaws.com/dev');
  expect(resolveValue({ 'Fn::Sub': '${Table}|${Table.Arn}|${!Literal}' }, context)).toBe('Stack-Table|arn:aws:dynamodb:eu-west-1:000000000000:table/Stack-Table|${Literal}');
  expect(resolveValue({ 'Fn::Select': [1, { 'Fn::Split': [',', 'a,b,c'] }] }, context)).toBe('b');
});

test('refuses what has no local value, naming it', () => {
  expect(() => resolveValue({ Ref: 'Elsewhere' }, context)).toThrow(new UnresolvableError('Ref Elsewhere has no local value'));
  expect(() => resolveValue({ 'Fn::ImportValue': 'SharedVpc' }, context)).toThrow(/Fn::ImportValue "SharedVpc"/);
});

test('points the deployed endpoints of served APIs at the local gateway, and leaves others alone', () => {
  const environment = {
    CALLBACK_URL: 'https://abc123defg.execute-api.eu-west-1.amazonaws.com/dev',
    URL: 'wss://abc123defg.execute-api.eu-west-1.amazonaws.com/dev',
    OTHER: 'https://zzzzzzzzzz.execute-api.eu-west-1.amazonaws.com/dev',
  };
  expect(localizeEndpoints(environment, [{ apiId: 'abc123defg', host: '127.0.0.1:4000' }])).toEqual({
    CALLBACK_URL: 'http://127.0.0.1:4000/dev',
    URL: 'ws://127.0.0.1:4000/dev',
    OTHER: 'https://zzzzzzzzzz.execute-api.eu-west-1.amazonaws.com/dev',
  });
});
