// The names of the training backends, best first. Its own module, with no TensorFlow.js import, so
// that the language server's settings can name them without loading a training engine
// (backend.ts, which loads and chooses them, re-exports these).
export const BACKEND_NAMES = ['tfjs-node-gpu', 'webgpu', 'tfjs-node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];
