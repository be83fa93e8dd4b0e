// The `presets` tag: message sets plus model parameters, with the original's visibility rules
// (reference §3.7, §4.4): admins alone make presets public and change or delete public ones.
import { detail } from '../errors.ts';
import type { AideerHandlers } from '../types.ts';
import { ADMIN } from '../users.ts';
import { listOptions, type Presets } from '../chats.ts';
import { invalidMessageTime } from './chats.ts';

const PRESET_NOT_FOUND = () => detail(404, 'Preset not found');

export function presetsHandlers({ presets }: { presets: Presets }) {
  return {
    listPresets: async ({ auth, query }) => ({ status: 200, body: await presets.list(auth.user.id, auth.user.permission >= ADMIN, listOptions(query)) }),

    createPreset: async ({ auth, body }) => {
      const invalid = invalidMessageTime(body.messages);
      if (invalid) return invalid;
      if (body.visibility === 'public' && auth.user.permission < ADMIN) return detail(403, 'Insufficient permissions: You cannot create public presets');
      return { status: 200, body: await presets.create(auth.user.id, body) };
    },

    readPreset: async ({ auth, params }) => {
      const preset = await presets.read(params.preset_id);
      if (!preset) return PRESET_NOT_FOUND();
      // Admins included: the original has no admin bypass for reading.
      if (preset.visibility === 'private' && preset.owner_id !== auth.user.id) return detail(403, 'Insufficient permissions: You do not have access to this preset');
      return { status: 200, body: preset };
    },

    updatePreset: async ({ auth, params, body }) => {
      const invalid = invalidMessageTime(body.messages);
      if (invalid) return invalid;
      const preset = await presets.byId(params.preset_id);
      if (!preset) return PRESET_NOT_FOUND();
      const isAdmin = auth.user.permission >= ADMIN;
      if (preset.owner_id !== auth.user.id && !isAdmin) return detail(403, "Insufficient permissions: You cannot update other users' presets");
      if (preset.visibility === 'public' && !isAdmin) return detail(403, 'Insufficient permissions: You cannot update public presets');
      if (body.visibility === 'public' && !isAdmin) return detail(403, 'Insufficient permissions: You cannot set preset visibility to public');
      const updated = await presets.replace(preset.id, body);
      return updated ? { status: 200, body: updated } : PRESET_NOT_FOUND();
    },

    deletePreset: async ({ auth, params }) => {
      const preset = await presets.byId(params.preset_id);
      if (!preset) return PRESET_NOT_FOUND();
      const isAdmin = auth.user.permission >= ADMIN;
      if (preset.owner_id !== auth.user.id && !isAdmin) return detail(403, "Insufficient permissions: You cannot delete other users' presets");
      if (preset.visibility === 'public' && !isAdmin) return detail(403, 'Insufficient permissions: You cannot delete public presets');
      if (!(await presets.delete(preset.id))) return PRESET_NOT_FOUND();
      return { status: 200, body: { message: 'Preset deleted successfully' } };
    },
  } satisfies Partial<AideerHandlers>;
}
