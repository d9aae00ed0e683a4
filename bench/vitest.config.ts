import { defineProject } from 'vitest/config'

// The benchmarks' own parts that can be checked quickly: the packet capture's reading
// and the wire bench's arithmetic (the benchmarks themselves run with `npm run bench`).
export default defineProject({
  test: {
    name: 'bench',
    include: ['test/**/*.test.ts'],
    // tshark loads its dissectors before it captures: a second or two.
    testTimeout: 30_000,
  },
})
