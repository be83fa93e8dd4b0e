// The rules of AIDeer presets (A15), as outcomes the handlers map to answers: a private preset is
// its owner's alone (no admin bypass for reading, as the original); only admins make presets
// public, and only admins change or delete public ones or other users' presets.
import type { components } from '../../../generated/aideer.ts';
import type { NewMessage } from '../store/messages.ts';
import type { PresetFields, PresetStore, PresetWithMessages } from '../store/presets.ts';
import type { ListPage, UserRow } from '../store/rows.ts';
import { isAdmin } from './access.ts';
import { storedParameters } from './messages.ts';

type Caller = Pick<UserRow, 'id' | 'permission'>;
/** A preset body, its messages ready to store. */
export type PresetInput = Omit<components['schemas']['PresetCreate'], 'messages'> & { messages: NewMessage[] };

export class Presets {
  /** `parameterNames`: the keys of the spec's PresetParameters, the only ones stored. */
  constructor(
    private readonly store: PresetStore,
    private readonly parameterNames: readonly string[],
  ) {}

  private fields(input: PresetInput): PresetFields {
    const { title, description, type, visibility, messages } = input;
    const parameters = JSON.stringify(storedParameters(this.parameterNames, input.parameters));
    return { title, description, type, visibility, parameters, messages };
  }

  list(caller: Caller, page: ListPage): Promise<PresetWithMessages[]> {
    return this.store.page(caller.id, isAdmin(caller), page);
  }

  async create(caller: Caller, input: PresetInput): Promise<PresetWithMessages | 'forbidden'> {
    if (input.visibility === 'public' && !isAdmin(caller)) return 'forbidden';
    return this.store.insert(caller.id, this.fields(input));
  }

  async read(caller: Caller, presetId: string): Promise<PresetWithMessages | 'notFound' | 'forbidden'> {
    const preset = await this.store.byId(presetId);
    if (!preset) return 'notFound';
    if (preset.visibility === 'private' && preset.owner_id !== caller.id) return 'forbidden';
    return this.store.withMessages(preset);
  }

  async replace(
    caller: Caller,
    presetId: string,
    input: PresetInput,
  ): Promise<PresetWithMessages | 'notFound' | 'notOwner' | 'public' | 'makePublic'> {
    const preset = await this.store.byId(presetId);
    if (!preset) return 'notFound';
    const admin = isAdmin(caller);
    if (preset.owner_id !== caller.id && !admin) return 'notOwner';
    if (preset.visibility === 'public' && !admin) return 'public';
    if (input.visibility === 'public' && !admin) return 'makePublic';
    // An admin may make the preset public after the read above: the write checks again.
    return this.store.replace(preset.id, this.fields(input), { unlessPublic: !admin });
  }

  async delete(caller: Caller, presetId: string): Promise<'deleted' | 'notFound' | 'notOwner' | 'public'> {
    const preset = await this.store.byId(presetId);
    if (!preset) return 'notFound';
    const admin = isAdmin(caller);
    if (preset.owner_id !== caller.id && !admin) return 'notOwner';
    if (preset.visibility === 'public' && !admin) return 'public';
    return this.store.delete(preset.id, { unlessPublic: !admin });
  }
}
