// The `presets` tag: message sets plus model parameters, with the original's visibility rules
// (decision A15): admins alone make presets public and change or delete public ones.
import { detail } from '../errors.ts';
import type { AideerHandlers } from '../types.ts';
import { ADMIN } from '../users.ts';
import type { Presets } from '../chats.ts';
import { presetNotFound, storableMessages } from '../replies.ts';

const CANNOT_UPDATE_PUBLIC = () => detail(403, 'Insufficient permissions: You cannot update public presets');
const CANNOT_DELETE_PUBLIC = () => detail(403, 'Insufficient permissions: You cannot delete public presets');

export function presetsHandlers({ presets }: { presets: Presets }) {
  return {
    listPresets: async ({ auth, query }) => ({ status: 200, body: await presets.list(auth.user.id, auth.user.permission >= ADMIN, query) }),

    createPreset: async ({ auth, body }) => {
      const messages = storableMessages(body.messages);
      if (!Array.isArray(messages)) return messages;
      if (body.visibility === 'public' && auth.user.permission < ADMIN) return detail(403, 'Insufficient permissions: You cannot create public presets');
      return { status: 200, body: await presets.create(auth.user.id, { ...body, messages }) };
    },

    readPreset: async ({ auth, params }) => {
      const preset = await presets.byId(params.preset_id);
      if (!preset) return presetNotFound(404);
      // Admins included: the original has no admin bypass for reading.
      if (preset.visibility === 'private' && preset.owner_id !== auth.user.id) return detail(403, 'Insufficient permissions: You do not have access to this preset');
      return { status: 200, body: await presets.read(preset) };
    },

    updatePreset: async ({ auth, params, body }) => {
      const messages = storableMessages(body.messages);
      if (!Array.isArray(messages)) return messages;
      const preset = await presets.byId(params.preset_id);
      if (!preset) return presetNotFound(404);
      const isAdmin = auth.user.permission >= ADMIN;
      if (preset.owner_id !== auth.user.id && !isAdmin) return detail(403, "Insufficient permissions: You cannot update other users' presets");
      if (preset.visibility === 'public' && !isAdmin) return CANNOT_UPDATE_PUBLIC();
      if (body.visibility === 'public' && !isAdmin) return detail(403, 'Insufficient permissions: You cannot set preset visibility to public');
      // An admin may make the preset public after the read above: the write checks again.
      const updated = await presets.replace(preset.id, { ...body, messages }, { unlessPublic: !isAdmin });
      if (updated === 'notFound') return presetNotFound(404);
      if (updated === 'public') return CANNOT_UPDATE_PUBLIC();
      return { status: 200, body: updated };
    },

    deletePreset: async ({ auth, params }) => {
      const preset = await presets.byId(params.preset_id);
      if (!preset) return presetNotFound(404);
      const isAdmin = auth.user.permission >= ADMIN;
      if (preset.owner_id !== auth.user.id && !isAdmin) return detail(403, "Insufficient permissions: You cannot delete other users' presets");
      if (preset.visibility === 'public' && !isAdmin) return CANNOT_DELETE_PUBLIC();
      const outcome = await presets.delete(preset.id, { unlessPublic: !isAdmin });
      if (outcome === 'notFound') return presetNotFound(404);
      if (outcome === 'public') return CANNOT_DELETE_PUBLIC();
      return { status: 200, body: { message: 'Preset deleted successfully' } };
    },
  } satisfies Partial<AideerHandlers>;
}
