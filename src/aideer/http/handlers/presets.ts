// The `presets` tag: message sets plus model parameters (decision A15); the rules are in
// domain/presets.ts.
import { detail } from '../errors.ts';
import type { AideerHandlers } from '../types.ts';
import type { Presets } from '../../domain/presets.ts';
import type { ListPage } from '../../store/rows.ts';
import { presetNotFound, storableMessages } from '../replies.ts';
import { presetRead } from '../wire.ts';

const forbidden = (what: string) => () => detail(403, `Insufficient permissions: You ${what}`);
const refusals = {
  notFound: () => presetNotFound(404),
  create: forbidden('cannot create public presets'),
  read: forbidden('do not have access to this preset'),
  update: {
    notOwner: forbidden("cannot update other users' presets"),
    public: forbidden('cannot update public presets'),
    makePublic: forbidden('cannot set preset visibility to public'),
  },
  delete: {
    notOwner: forbidden("cannot delete other users' presets"),
    public: forbidden('cannot delete public presets'),
  },
};

export function presetsHandlers({ presets }: { presets: Presets }) {
  return {
    listPresets: async ({ auth, query }) => {
      // Each list parameter has a default in the spec, which the validator filled in.
      const page = await presets.list(auth.user, query as ListPage);
      return { status: 200, body: page.map(presetRead) };
    },

    createPreset: async ({ auth, body }) => {
      const messages = storableMessages(body.messages);
      if (!Array.isArray(messages)) return messages;
      const preset = await presets.create(auth.user, { ...body, messages });
      return preset === 'forbidden' ? refusals.create() : { status: 200, body: presetRead(preset) };
    },

    readPreset: async ({ auth, params }) => {
      const preset = await presets.read(auth.user, params.preset_id);
      if (preset === 'notFound') return refusals.notFound();
      if (preset === 'forbidden') return refusals.read();
      return { status: 200, body: presetRead(preset) };
    },

    updatePreset: async ({ auth, params, body }) => {
      const messages = storableMessages(body.messages);
      if (!Array.isArray(messages)) return messages;
      const preset = await presets.replace(auth.user, params.preset_id, { ...body, messages });
      if (preset === 'notFound') return refusals.notFound();
      if (typeof preset === 'string') return refusals.update[preset]();
      return { status: 200, body: presetRead(preset) };
    },

    deletePreset: async ({ auth, params }) => {
      const outcome = await presets.delete(auth.user, params.preset_id);
      if (outcome === 'notFound') return refusals.notFound();
      if (outcome !== 'deleted') return refusals.delete[outcome]();
      return { status: 200, body: { message: 'Preset deleted successfully' } };
    },
  } satisfies Partial<AideerHandlers>;
}
