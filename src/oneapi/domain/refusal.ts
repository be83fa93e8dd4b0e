/** Why an operation on one of the caller's topics or subscriptions was refused (decision O8). */
export type Refusal = 'notFound' | 'forbidden';

/** The row if it exists and is the user's; otherwise why the user cannot have it. */
export function owned<Row extends { user_id: number }>(row: Row | undefined, userId: number): Row | Refusal {
  if (!row) return 'notFound';
  if (row.user_id !== userId) return 'forbidden';
  return row;
}
