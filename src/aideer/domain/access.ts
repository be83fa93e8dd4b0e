// Who may do what, in one place: the permission levels of AIDeer users (A2, A15).
import type { UserRow } from '../store/rows.ts';

/** The permission of administrators (1 is a plain user). */
export const ADMIN = 2;

export const isAdmin = (user: Pick<UserRow, 'permission'>): boolean => user.permission >= ADMIN;

/** The owner, or an administrator. */
export const ownsOrAdmin = (user: Pick<UserRow, 'id' | 'permission'>, ownerId: number): boolean =>
  ownerId === user.id || isAdmin(user);
