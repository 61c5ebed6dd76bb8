// The workspaceLm.* settings as the server sees them: one typed object, its defaults (mirroring
// package.json's "contributes.configuration") and validation. Reading them from the client and
// caching per document is server.ts's job; this file only turns raw JSON into Settings. The preset
// names and the default preset are models/src/model/config.ts's.
import { DEFAULT_PRESET, PRESET_NAMES, isPresetName, type PresetName } from '../../models/src/model/config';
import { BACKEND_NAMES } from '../../models/src/train/backendNames';

const BACKEND_SETTINGS = ['auto', ...BACKEND_NAMES] as const;

export interface Settings {
  enableCompletions: boolean; // serve inline completions from the active model
  languages: string[]; // language ids to complete in; empty means every language
  multiline: boolean; // complete a block (several lines) instead of the rest of the line
  maxTokens: number; // tokens generated per completion
  minTokenProbability: number; // hide completions whose tokens' geometric-mean probability is lower; 0 shows all
  debounceMs: number; // wait this long after the last keystroke before running the model
  preset: PresetName; // model size for "Train Model on Workspace"
  backend: (typeof BACKEND_SETTINGS)[number]; // training engine; auto picks the best that loads
  modelsDir: string; // where model folders live; empty means the extension's workspace storage
  exclude: string[]; // globs left out of training on top of .gitignore
  summaryOnHover: boolean; // show the model's one-line summary when hovering a function's header
  autoFineTune: boolean; // fine-tune the active model on saved files when the editor is idle (autoFineTune.ts)
}

export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  enableCompletions: true,
  languages: [],
  multiline: false,
  maxTokens: 32,
  minTokenProbability: 0.3,
  debounceMs: 150,
  preset: DEFAULT_PRESET,
  backend: 'auto',
  modelsDir: '',
  exclude: [],
  summaryOnHover: false,
  autoFineTune: false,
});

const MAX_TOKENS_LIMIT = 256; // beyond this a tiny model only repeats itself, slowly
const DEBOUNCE_LIMIT_MS = 5000;

/**
 * Settings from the raw `workspaceLm` section. A bad value falls back to its default and adds one
 * line to `problems` naming the setting, the value and what is allowed; it never throws.
 */
export function parseSettings(raw: unknown): { settings: Settings; problems: string[] } {
  const settings: Settings = { ...DEFAULT_SETTINGS, languages: [], exclude: [] };
  const problems: string[] = [];
  if (raw === null || raw === undefined) return { settings, problems };
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    problems.push(`workspaceLm settings must be an object, got ${JSON.stringify(raw)}; using defaults`);
    return { settings, problems };
  }
  const source = raw as Record<string, unknown>;
  const bad = (key: keyof Settings, allowed: string) =>
    problems.push(`workspaceLm.${key}: ${JSON.stringify(source[key])} is not ${allowed}; using ${JSON.stringify(DEFAULT_SETTINGS[key])}`);

  for (const key of ['enableCompletions', 'multiline', 'summaryOnHover', 'autoFineTune'] as const) {
    if (source[key] === undefined) continue;
    if (typeof source[key] === 'boolean') settings[key] = source[key];
    else bad(key, 'true or false');
  }
  for (const key of ['languages', 'exclude'] as const) {
    const value = source[key];
    if (value === undefined) continue;
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) settings[key] = [...value];
    else bad(key, 'a list of strings');
  }
  const maxTokens = source.maxTokens;
  if (maxTokens !== undefined) {
    if (Number.isInteger(maxTokens) && (maxTokens as number) >= 1 && (maxTokens as number) <= MAX_TOKENS_LIMIT) settings.maxTokens = maxTokens as number;
    else bad('maxTokens', `an integer from 1 to ${MAX_TOKENS_LIMIT}`);
  }
  const minP = source.minTokenProbability;
  if (minP !== undefined) {
    if (typeof minP === 'number' && minP >= 0 && minP < 1) settings.minTokenProbability = minP;
    else bad('minTokenProbability', 'a number from 0 (show all) up to, not including, 1');
  }
  const debounceMs = source.debounceMs;
  if (debounceMs !== undefined) {
    if (typeof debounceMs === 'number' && debounceMs >= 0 && debounceMs <= DEBOUNCE_LIMIT_MS) settings.debounceMs = debounceMs;
    else bad('debounceMs', `a number of milliseconds from 0 to ${DEBOUNCE_LIMIT_MS}`);
  }
  if (source.preset !== undefined) {
    if (typeof source.preset === 'string' && isPresetName(source.preset)) settings.preset = source.preset;
    else bad('preset', `one of ${PRESET_NAMES.join(', ')}`);
  }
  if (source.backend !== undefined) {
    if ((BACKEND_SETTINGS as readonly unknown[]).includes(source.backend)) settings.backend = source.backend as Settings['backend'];
    else bad('backend', `one of ${BACKEND_SETTINGS.join(', ')}`);
  }
  if (source.modelsDir !== undefined) {
    if (typeof source.modelsDir === 'string') settings.modelsDir = source.modelsDir.trim();
    else bad('modelsDir', 'a folder path');
  }
  return { settings, problems };
}

/** Whether completions are wanted in a document of this language. */
export function completesLanguage(settings: Settings, languageId: string): boolean {
  return settings.enableCompletions && (settings.languages.length === 0 || settings.languages.includes(languageId));
}
