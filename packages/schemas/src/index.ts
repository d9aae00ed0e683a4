export * from './ids.ts'
export * from './payloads.ts'
export * from './topics.ts'
export * from './decode.ts'
