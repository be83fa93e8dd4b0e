// Pagination of One-API lists (decision O7): `page` from 1, `size` 1–100 with `page_size` as an
// alias (`size` wins), echoed back with the total. Bounds are enforced by the spec.

export interface PageQuery {
  page?: number;
  size?: number;
  page_size?: number;
}

export interface Page {
  page: number;
  size: number;
  offset: number;
}

export function pageOf(query: PageQuery, defaultSize: number): Page {
  const page = query.page ?? 1;
  const size = query.size ?? query.page_size ?? defaultSize;
  return { page, size, offset: (page - 1) * size };
}
