import { afterEach, describe, expect, it, vi } from 'vitest'
import { keepRenewed, renewalDelayMs } from '../src/client-credentials.ts'
import type { IssuedToken } from '../src/client-credentials.ts'

const at = (expiresInS: number, name = 't'): IssuedToken => ({
  accessToken: name,
  expiresAt: Date.now() + expiresInS * 1000,
})

describe('renewing a token', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('renews a fifth of its life before it expires, 10 s to 5 min and at most half of it', () => {
    const now = Date.now()
    expect(renewalDelayMs({ accessToken: '', expiresAt: now + 300_000 }, now)).toBe(240_000)
    expect(renewalDelayMs({ accessToken: '', expiresAt: now + 30_000 }, now)).toBe(20_000)
    expect(renewalDelayMs({ accessToken: '', expiresAt: now + 3_600_000 }, now)).toBe(3_300_000)
    // A short-lived token is renewed half-way, not at once and over and over.
    expect(renewalDelayMs({ accessToken: '', expiresAt: now + 6_000 }, now)).toBe(3_000)
    expect(renewalDelayMs({ accessToken: '', expiresAt: now - 1_000 }, now)).toBe(0)
  })

  it('hands on each new token and tries a failed request again with backoff', async () => {
    vi.useFakeTimers()
    const answers: (() => IssuedToken)[] = [
      () => {
        throw new Error('issuer down')
      },
      () => {
        throw new Error('issuer down')
      },
      () => at(100, 'second'),
      () => at(100, 'third'),
    ]
    const request = vi.fn(async () => answers.shift()!())
    const got: string[] = []
    const errors: string[] = []
    const renewal = keepRenewed(
      at(100, 'first'),
      request,
      (t) => got.push(t.accessToken),
      (e) => errors.push(e.message),
    )
    await vi.advanceTimersByTimeAsync(79_999)
    expect(request).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(1) // 80 s: 20 s before expiry
    expect(errors).toEqual(['issuer down'])
    await vi.advanceTimersByTimeAsync(1_000) // retried after 1 s
    expect(errors).toEqual(['issuer down', 'issuer down'])
    expect(got).toEqual([])
    await vi.advanceTimersByTimeAsync(2_000) // then after 2 s
    expect(got).toEqual(['second'])
    await vi.advanceTimersByTimeAsync(80_000) // the second one's renewal
    expect(got).toEqual(['second', 'third'])
    renewal.stop()
    await vi.advanceTimersByTimeAsync(200_000)
    expect(request).toHaveBeenCalledTimes(4)
  })
})
