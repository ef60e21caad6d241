// The SDK (sdk/typescript), as the console loads it: written by `npm run build:console`.
export * from './sdk/index.js';
