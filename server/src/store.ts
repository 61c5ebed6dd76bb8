// The models folder as the server answers about it: models/src/model/store.ts's ModelStore, whose
// errors become response errors with the protocol's codes. Everything about folders lives there.
import { ResponseError } from 'vscode-languageserver';
import { ModelStore as FolderStore, ModelStoreError } from '../../models/src/model/store';
import { ErrorCodes } from '../../protocol/src/customMessages';

export { isModelName, newModelName } from '../../models/src/model/store';

const CODES: Record<ModelStoreError['code'], number> = { invalidName: ErrorCodes.invalidParams, notFound: ErrorCodes.notFound, busy: ErrorCodes.busy };

function answered<T>(run: () => T): T {
  try {
    return run();
  } catch (err) {
    throw err instanceof ModelStoreError ? new ResponseError(CODES[err.code], err.message) : err;
  }
}

async function answeredAsync<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw err instanceof ModelStoreError ? new ResponseError(CODES[err.code], err.message) : err;
  }
}

export class ModelStore extends FolderStore {
  override dirOf(name: unknown): string {
    return answered(() => super.dirOf(name));
  }

  override prepare(name: string, training: string | null): Promise<string> {
    return answeredAsync(() => super.prepare(name, training));
  }

  override remove(name: string, training: string | null): Promise<void> {
    return answeredAsync(() => super.remove(name, training));
  }

  override writeActive(name: string | null): Promise<void> {
    return answeredAsync(() => super.writeActive(name));
  }
}
