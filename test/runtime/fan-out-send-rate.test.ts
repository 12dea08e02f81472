import { SendRate } from '../../src/runtime/send-rate';

/** A clock the test moves by hand. */
function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => { t += ms; } };
}

test('unpaced until throttled when no ceiling is given', () => {
  expect(new SendRate().rate).toBe(Number.POSITIVE_INFINITY);
});

test('a ceiling is the starting rate and is never exceeded', () => {
  const c = clock();
  const rate = new SendRate({ maxRate: 500, now: c.now });
  expect(rate.rate).toBe(500);
  for (let i = 0; i < 100; i++) { c.advance(100); rate.onSuccess(); }
  expect(rate.rate).toBe(500);
});

test('one slow client\'s few 429s among many sends do not lower the rate', () => {
  const c = clock();
  const rate = new SendRate({ maxRate: 2_000, now: c.now });
  for (let i = 0; i < 1_000; i++) { c.advance(1); rate.onSuccess(); }
  for (let i = 0; i < 5; i++) rate.onThrottle(); // 5 of ~1,000 in the last second: under 1%
  expect(rate.rate).toBe(2_000);
});

test('sustained 429s lower the rate to a little under what got through, once per cooldown, then it climbs back', () => {
  const c = clock();
  const rate = new SendRate({ now: c.now });
  // One second at 1,000 successes per second, then a storm of throttles.
  for (let i = 0; i < 1_000; i++) { c.advance(1); rate.onSuccess(); }
  for (let i = 0; i < 50; i++) rate.onThrottle();
  expect(rate.rate).toBeGreaterThan(900);
  expect(rate.rate).toBeLessThan(960); // 95% of the measured 1,000/s, give or take a bucket
  const lowered = rate.rate;
  for (let i = 0; i < 50; i++) rate.onThrottle(); // same cooldown: no second cut
  expect(rate.rate).toBe(lowered);
  // A quiet second raises it again, a few percent per 100 ms.
  for (let i = 0; i < 10; i++) { c.advance(100); rate.onSuccess(); }
  expect(rate.rate).toBeGreaterThan(lowered * 1.15);
});

test('a new send after a quiet spell starts again at the ceiling', () => {
  const c = clock();
  const rate = new SendRate({ maxRate: 3_000, now: c.now });
  for (let i = 0; i < 500; i++) { c.advance(2); rate.onSuccess(); }
  for (let i = 0; i < 20; i++) rate.onThrottle();
  expect(rate.rate).toBeLessThan(3_000);
  rate.restart();
  expect(rate.rate).toBeLessThan(3_000); // the throttle is recent
  c.advance(2_500);
  rate.restart();
  expect(rate.rate).toBe(3_000);
});

test('acquire paces sends at the rate', async () => {
  const rate = new SendRate({ maxRate: 100 });
  const started = Date.now();
  for (let i = 0; i < 16; i++) await rate.acquire();
  // 16 sends at 100/s: 150 ms, less the 50 ms burst allowance.
  expect(Date.now() - started).toBeGreaterThanOrEqual(90);
});

test('acquire never waits past a deadline: a slot at or after it is refused at once and not taken', async () => {
  const c = clock();
  const rate = new SendRate({ maxRate: 10, now: c.now }); // a slot every 100 ms
  const deadline = c.now() + 250;
  const granted: boolean[] = [];
  for (let i = 0; i < 6; i++) granted.push(await rate.acquire(deadline)); // granted slots wait real timers (at most 150 ms)
  // Slots at -50 (burst), 50, 150 and 250 ms: the one at the deadline and later are refused.
  expect(granted).toEqual([true, true, true, false, false, false]);
  // Refused slots were not taken: without a deadline the next slot is the one at 250 ms.
  c.advance(250);
  expect(await rate.acquire()).toBe(true);
  expect(await rate.acquire(c.now() + 50)).toBe(false); // the next slot is 100 ms away
});

test('acquire with no ceiling only says whether the deadline has passed', async () => {
  const rate = new SendRate();
  expect(await rate.acquire(Date.now() + 1_000)).toBe(true);
  expect(await rate.acquire(Date.now() - 1)).toBe(false);
});
