import { describe, expect, it } from 'vitest';
import { json } from '../../../lib/http/responses';
import { apiRoute } from '../../../lib/http/routes';
import { InvalidOrderRequestError } from '../../../lib/orders/errors';
import { apiEvent } from '../../support/api';

const event = apiEvent({ method: 'POST', path: '/orders', body: '{}' });

describe('apiRoute', () => {
  it('answers what the work answers', async () => {
    const answer = await apiRoute(async () => json(201, { ok: true }))(event);
    expect(answer).toMatchObject({ statusCode: 201, body: '{"ok":true}' });
  });

  it("answers a failure as a JSON API error: 4xx for the caller's mistakes, 500 for anything unexpected", async () => {
    const invalid = await apiRoute(async () => {
      throw new InvalidOrderRequestError('totalFee is required', 'totalFee');
    })(event);
    expect(invalid.statusCode).toBe(400);
    expect(JSON.parse(invalid.body as string)).toEqual({
      error: { code: 'INVALID_REQUEST', message: 'totalFee is required', field: 'totalFee' },
    });
    const unexpected = await apiRoute(async () => {
      throw new Error('a bug');
    })(event);
    expect(unexpected.statusCode).toBe(500);
    expect(JSON.parse(unexpected.body as string)).toEqual({ error: { code: 'INTERNAL', message: 'unexpected failure' } });
  });
});
