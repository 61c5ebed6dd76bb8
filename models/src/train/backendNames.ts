// The names of the training backends, best first. Its own module, with no TensorFlow.js import, so
// that the language server's settings can name them without loading a training engine
// (backend.ts, which loads and chooses them, re-exports these).
// 'onnxruntime' trains on the CPU through onnxruntime (train/onnxGradients.ts); the others are
// TensorFlow.js backends.
export const BACKEND_NAMES = ['tfjs-node-gpu', 'webgpu', 'onnxruntime', 'tfjs-node', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];
